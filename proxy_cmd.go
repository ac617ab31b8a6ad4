package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"kubelite/nodeagent/proxy"
)

// newProxyCommand is `kubelite proxy rules --service ns/name`: the iptables
// chains that implement one Service on this node, for learning.
func newProxyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "proxy", Short: "Look at this node's service proxy"}
	var service string
	rules := &cobra.Command{
		Use:   "rules --service NAMESPACE/NAME",
		Short: "Print the iptables rules that implement one Service on this node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, ok := strings.Cut(service, "/")
			if !ok {
				ns, name = "default", service
			}
			if name == "" {
				return fmt.Errorf("--service is required, e.g. --service default/httpd-svc")
			}
			saved, err := exec.CommandContext(cmd.Context(), "iptables-save").Output()
			if err != nil {
				return fmt.Errorf("iptables-save: %w", err)
			}
			out := proxy.ServiceRules(saved, ns, name)
			if out == "" {
				return fmt.Errorf("no rules for Service %s/%s on this node", ns, name)
			}
			_, err = fmt.Fprint(os.Stdout, out)
			return err
		},
	}
	rules.Flags().StringVar(&service, "service", "", "the Service, as NAMESPACE/NAME")
	cmd.AddCommand(rules)
	return cmd
}
