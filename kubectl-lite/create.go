package kubectl

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"kubelite/api"
	"kubelite/api/client"
)

// CreateOptions are the options of `kubectl-lite create -f`.
type CreateOptions struct {
	manifestWrite
	saveConfig bool
}

func newCreateCommand(f *factory) *cobra.Command {
	o := &CreateOptions{manifestWrite: manifestWrite{f: f}}
	cmd := &cobra.Command{
		Use:                   "create -f FILENAME",
		DisableFlagsInUseLine: true,
		Short:                 "Create a resource from a file or from stdin",
		Long:                  "Create a resource from a file or from stdin.\n\nJSON and YAML formats are accepted.",
		Example: `  # Create the objects of httpd.yml
  kubectl-lite create -f httpd.yml

  # Create a namespace and a deployment
  kubectl-lite create namespace demo
  kubectl-lite create deployment httpd --image=httpd --replicas=3 --port=80`,
		RunE: f.runE(o),
	}
	o.files.addFlags(cmd, "Filename, directory, or URL to files to use to create the resource")
	o.write.addFlags(cmd)
	cmd.Flags().BoolVar(&o.saveConfig, "save-config", false, "If true, the configuration of current object will be saved in its annotation. Otherwise, the annotation will be unchanged. This flag is useful when you want to perform kubectl apply on this object in the future.")
	cmd.AddCommand(newCreateNamespaceCommand(f), newCreateDeploymentCommand(f))
	return cmd
}

// Complete reads the namespace and the write flags.
func (o *CreateOptions) Complete(cmd *cobra.Command, args []string) error {
	return o.complete(cmd, args)
}

// Validate checks that there is something to create.
func (o *CreateOptions) Validate() error { return o.validate() }

// Run creates every document; see manifestWrite.each.
func (o *CreateOptions) Run(ctx context.Context) error { return o.each(ctx, "create", o.createOne) }

// createOne creates one document (with the last-applied annotation under --save-config).
func (o *CreateOptions) createOne(ctx context.Context, c *client.Client, doc *resolvedManifest) (*writeResult, error) {
	body := doc.body()
	if o.saveConfig {
		var err error
		if body, err = withLastApplied(body); err != nil {
			return nil, err
		}
	}
	data, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", doc.source, err)
	}
	result, err := createObject(ctx, c, doc.resource, doc.ns, doc.apiVersion, data, o.write.dryRun, o.writeOptions)
	if err != nil {
		return nil, withSource("creating", doc.source, err)
	}
	return result, nil
}

// createObject posts one object, or only pretends to with --dry-run=client.
func createObject(ctx context.Context, c *client.Client, r *api.Resource, ns, apiVersion string, body []byte, dryRun string, opts client.WriteOptions) (*writeResult, error) {
	if dryRun == dryRunClient {
		return &writeResult{verb: "created", object: body}, nil
	}
	created, err := c.Resource(r, ns).Create(ctx, apiVersion, body, opts)
	if err != nil {
		return nil, err
	}
	return &writeResult{verb: "created", object: created}, nil
}

// generatedObject is what `create namespace` and `create deployment` build.
type generatedObject struct {
	f     *factory
	write writeFlags

	namespace    string
	writeOptions client.WriteOptions
}

func (g *generatedObject) complete() error {
	var err error
	if g.writeOptions, err = g.write.complete(); err != nil {
		return err
	}
	g.namespace, _ = g.f.Namespace()
	return nil
}

// create sends obj (unless --dry-run=client) and prints the result.
func (g *generatedObject) create(ctx context.Context, obj api.Object) error {
	r := g.f.scheme.For(obj)
	meta := obj.GetObjectMeta()
	ns := ""
	if r.Namespaced {
		ns = g.namespace
	}
	body, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", r.Kind, err)
	}
	var c *client.Client
	if g.write.dryRun != dryRunClient {
		if c, err = g.f.Client(); err != nil {
			return err
		}
	}
	result, err := createObject(ctx, c, r, ns, r.APIVersion(), body, g.write.dryRun, g.writeOptions)
	if err != nil {
		return err
	}
	return g.write.printResult(g.f.streams.Out, r, meta.Name, result)
}

// CreateNamespaceOptions are the options of `create namespace NAME`.
type CreateNamespaceOptions struct {
	generatedObject
	name string
}

func newCreateNamespaceCommand(f *factory) *cobra.Command {
	o := &CreateNamespaceOptions{generatedObject: generatedObject{f: f}}
	cmd := &cobra.Command{
		Use:                   "namespace NAME [--dry-run=none|client]",
		DisableFlagsInUseLine: true,
		Aliases:               []string{"ns"},
		Short:                 "Create a namespace with the specified name",
		Example: `  # Create a new namespace named my-namespace
  kubectl-lite create namespace my-namespace`,
		RunE: f.runE(o),
	}
	o.write.addFlags(cmd)
	return cmd
}

// Complete takes the name.
func (o *CreateNamespaceOptions) Complete(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageError(cmd, "exactly one NAME is required, got %d", len(args))
	}
	o.name = args[0]
	return o.complete()
}

// Validate checks the output format.
func (o *CreateNamespaceOptions) Validate() error {
	return validateOutput(o.write.output, "", outputName, outputJSON, outputYAML)
}

// Run creates the namespace.
func (o *CreateNamespaceOptions) Run(ctx context.Context) error {
	return o.create(ctx, &api.Namespace{
		TypeMeta:   api.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: api.ObjectMeta{Name: o.name},
	})
}

// CreateDeploymentOptions are the options of `create deployment NAME --image=...`.
type CreateDeploymentOptions struct {
	generatedObject
	name     string
	images   []string
	replicas int32
	port     int32
}

func newCreateDeploymentCommand(f *factory) *cobra.Command {
	o := &CreateDeploymentOptions{generatedObject: generatedObject{f: f}}
	cmd := &cobra.Command{
		Use:                   "deployment NAME --image=image [--replicas=N] [--port=P] [--dry-run=none|client]",
		DisableFlagsInUseLine: true,
		Aliases:               []string{"deploy"},
		Short:                 "Create a deployment with the specified name",
		Example: `  # Create a deployment named httpd that runs the httpd image with 3 replicas, exposing port 80
  kubectl-lite create deployment httpd --image=httpd --replicas=3 --port=80`,
		RunE: f.runE(o),
	}
	o.write.addFlags(cmd)
	cmd.Flags().StringSliceVar(&o.images, "image", nil, "Image names to run. A deployment can have multiple images set for multi-container pod.")
	cmd.Flags().Int32VarP(&o.replicas, "replicas", "r", 1, "Number of replicas to create. Default is 1.")
	cmd.Flags().Int32Var(&o.port, "port", -1, "The containerPort that this deployment exposes.")
	return cmd
}

// Complete takes the name.
func (o *CreateDeploymentOptions) Complete(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageError(cmd, "exactly one NAME is required, got %d", len(args))
	}
	o.name = args[0]
	return o.complete()
}

// Validate checks the images and numbers.
func (o *CreateDeploymentOptions) Validate() error {
	if len(o.images) == 0 {
		return fmt.Errorf("required flag(s) \"image\" not set")
	}
	if o.replicas < 0 {
		return fmt.Errorf("--replicas must be greater than or equal to 0")
	}
	if o.port > 65535 {
		return fmt.Errorf("--port must be between 1 and 65535")
	}
	return validateOutput(o.write.output, "", outputName, outputJSON, outputYAML)
}

// Run builds the deployment as kubectl does (label app=NAME, one container
// per image, named after the image) and creates it.
func (o *CreateDeploymentOptions) Run(ctx context.Context) error {
	labels := map[string]string{"app": o.name}
	var containers []api.Container
	for _, image := range o.images {
		containers = append(containers, api.Container{Name: containerNameForImage(image), Image: image})
	}
	if o.port >= 0 && len(containers) > 0 {
		containers[0].Ports = []api.ContainerPort{{ContainerPort: o.port}}
	}
	return o.create(ctx, &api.Deployment{
		TypeMeta:   api.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: api.ObjectMeta{Name: o.name, Labels: labels},
		Spec: api.DeploymentSpec{
			Replicas: api.Ptr(o.replicas),
			Selector: &api.LabelSelector{MatchLabels: labels},
			Template: api.PodTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: labels},
				Spec:       api.PodSpec{Containers: containers},
			},
		},
	})
}

// containerNameForImage is the image's last path element without tag or
// digest: "docker.io/library/httpd:2.4" → "httpd".
func containerNameForImage(image string) string {
	name := image[strings.LastIndex(image, "/")+1:]
	if i := strings.IndexAny(name, ":@"); i >= 0 {
		name = name[:i]
	}
	return strings.ReplaceAll(name, "_", "-")
}
