package kubectl

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"kubelite/api"
	"kubelite/api/client"
)

// ScaleOptions are the options of `kubectl-lite scale`.
type ScaleOptions struct {
	f *factory

	replicas        int
	currentReplicas int
	resourceVersion string
	output          string

	groups    []resourceGroup
	namespace string
}

func newScaleCommand(f *factory) *cobra.Command {
	o := &ScaleOptions{f: f}
	cmd := &cobra.Command{
		Use:                   "scale [--resource-version=version] [--current-replicas=count] --replicas=COUNT (TYPE NAME | TYPE/NAME)",
		DisableFlagsInUseLine: true,
		Short:                 "Set a new size for a deployment or replica set",
		Long: "Set a new size for a deployment or replica set.\n\n" +
			"Scale also allows users to specify one or more preconditions for the scale action.\n\n" +
			"If --current-replicas or --resource-version is specified, it is validated before the scale is attempted, " +
			"and it is guaranteed that the precondition holds true when the scale is sent to the server.",
		Example: `  # Scale the httpd deployment to 5 replicas
  kubectl-lite scale deploy/httpd --replicas=5

  # If the deployment's current size is 2, scale it to 3
  kubectl-lite scale --current-replicas=2 --replicas=3 deployment/httpd`,
		RunE: f.runE(o),
	}
	cmd.Flags().IntVar(&o.replicas, "replicas", -1, "The new desired number of replicas. Required.")
	cmd.Flags().IntVar(&o.currentReplicas, "current-replicas", -1, "Precondition for current size. Requires that the current size of the resource match this value in order to scale. -1 (default) for no condition.")
	cmd.Flags().StringVar(&o.resourceVersion, "resource-version", "", "Precondition for resource version. Requires that the current resource version match this value in order to scale.")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "Output format. One of: (name).")
	return cmd
}

// Complete parses the resource arguments.
func (o *ScaleOptions) Complete(cmd *cobra.Command, args []string) error {
	var err error
	if o.groups, err = parseResourceArgs(o.f.scheme, args); err != nil {
		return err
	}
	o.namespace, _ = o.f.Namespace()
	return nil
}

// Validate checks the replica count and the targets.
func (o *ScaleOptions) Validate() error {
	if o.replicas < 0 {
		return fmt.Errorf("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
	}
	if len(o.groups) == 0 {
		return fmt.Errorf("You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")
	}
	for _, g := range o.groups {
		if len(g.names) == 0 {
			return fmt.Errorf("resource(s) were provided, but no name was specified")
		}
		if !g.resource.HasSubresource("scale") {
			return fmt.Errorf("cannot scale %s: it has no scale subresource", g.resource.GroupResource())
		}
	}
	return validateOutput(o.output, "", outputName)
}

// Run reads each scale subresource, checks the preconditions and writes
// the new replica count.
func (o *ScaleOptions) Run(ctx context.Context) error {
	c, err := o.f.Client()
	if err != nil {
		return err
	}
	var errs errorList
	for _, g := range o.groups {
		dyn := c.Resource(g.resource, o.namespace)
		for _, name := range g.names {
			if err := o.scaleOne(ctx, dyn, name); err != nil {
				errs = append(errs, err)
				continue
			}
			if o.output == outputName {
				fmt.Fprintln(o.f.streams.Out, objectName(g.resource, name))
			} else {
				fmt.Fprintf(o.f.streams.Out, "%s scaled\n", objectName(g.resource, name))
			}
		}
	}
	return errs.orNil()
}

// scaleOne sets spec.replicas through the scale subresource (an
// autoscaling/v1 Scale): GET, then PUT with the same resourceVersion, so a
// concurrent change makes it fail rather than be overwritten.
func (o *ScaleOptions) scaleOne(ctx context.Context, dyn *client.Dynamic, name string) error {
	raw, err := dyn.Subresource(ctx, "GET", name, "scale", nil, nil)
	if err != nil {
		return err
	}
	var scale api.Scale
	if err := json.Unmarshal(raw, &scale); err != nil {
		return fmt.Errorf("decoding the scale of %q: %w", name, err)
	}
	if o.currentReplicas >= 0 && int(scale.Spec.Replicas) != o.currentReplicas {
		return fmt.Errorf("Expected replicas to be %d, was %d", o.currentReplicas, scale.Spec.Replicas)
	}
	if o.resourceVersion != "" && scale.ResourceVersion != o.resourceVersion {
		return fmt.Errorf("Expected resource version to be %s, was %s", o.resourceVersion, scale.ResourceVersion)
	}
	if scale.APIVersion == "" {
		scale.APIVersion, scale.Kind = "autoscaling/v1", "Scale"
	}
	scale.Spec.Replicas = int32(o.replicas)
	body, err := json.Marshal(&scale)
	if err != nil {
		return fmt.Errorf("encoding the scale of %q: %w", name, err)
	}
	_, err = dyn.Subresource(ctx, "PUT", name, "scale", nil, body)
	return err
}
