package kubectl

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"kubelite/api"
	"kubelite/api/client"
)

// ClusterInfoOptions are the options of `kubectl-lite cluster-info`.
type ClusterInfoOptions struct {
	f *factory
}

func newClusterInfoCommand(f *factory) *cobra.Command {
	o := &ClusterInfoOptions{f: f}
	return &cobra.Command{
		Use:                   "cluster-info",
		DisableFlagsInUseLine: true,
		Short:                 "Display cluster information",
		Long: "Display addresses of the control plane and services with label kubernetes.io/cluster-service=true. " +
			"To further debug and diagnose cluster problems, use 'kubectl-lite get nodes' and 'kubectl-lite describe'.",
		Example: `  # Print the address of the control plane and cluster services
  kubectl-lite cluster-info`,
		RunE: f.runE(o),
	}
}

// Complete takes no arguments.
func (o *ClusterInfoOptions) Complete(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError(cmd, "unexpected arguments: %v", args)
	}
	return nil
}

// Validate has nothing to check.
func (o *ClusterInfoOptions) Validate() error { return nil }

// Run prints the control plane address and the cluster services' proxy URLs.
func (o *ClusterInfoOptions) Run(ctx context.Context) error {
	c, err := o.f.Client()
	if err != nil {
		return err
	}
	server, err := o.f.ServerURL()
	if err != nil {
		return err
	}
	services, err := listTyped[api.Service](ctx, c, o.f.scheme, api.NamespaceSystem,
		client.ListOptions{LabelSelector: "kubernetes.io/cluster-service=true"})
	if err != nil {
		return err
	}
	printClusterInfo(o.f.streams.Out, server, services)
	return nil
}

// printClusterInfo writes the control plane line and one line per
// cluster service, linking its first port through the API server proxy,
// as kubectl does.
func printClusterInfo(out io.Writer, server string, services []api.Service) {
	server = strings.TrimSuffix(server, "/")
	fmt.Fprintf(out, "Kubernetes control plane is running at %s\n", server)
	for _, svc := range services {
		title := svc.Labels["kubernetes.io/name"]
		if title == "" {
			title = svc.Name
		}
		target := svc.Name
		if len(svc.Spec.Ports) > 0 {
			port := svc.Spec.Ports[0]
			if port.Name == "https" || port.Port == 443 {
				target = "https:" + target
			}
			if port.Name != "" {
				target += ":" + port.Name
			}
		}
		fmt.Fprintf(out, "%s is running at %s/api/v1/namespaces/%s/services/%s/proxy\n", title, server, svc.Namespace, target)
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "To further debug and diagnose cluster problems, use 'kubectl-lite describe' and 'kubectl-lite get events -A'.")
}
