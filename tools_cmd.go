package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"kubelite/internal/netnsproxy"
	"kubelite/nodeagent/images"
	"kubelite/nodeagent/proxy"
)

// newProxyCommand is `kubelite proxy rules --service ns/name`: the iptables
// chains (or, in nftables mode, the map elements and chains) that implement
// one Service on this node, for learning.
func newProxyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "proxy", Short: "Look at this node's service proxy"}
	var service string
	rules := &cobra.Command{
		Use:   "rules --service NAMESPACE/NAME",
		Short: "Print the iptables or nftables rules that implement one Service on this node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, ok := strings.Cut(service, "/")
			if !ok {
				ns, name = "default", service
			}
			if name == "" {
				return fmt.Errorf("--service is required, e.g. --service default/httpd-svc")
			}
			out, err := proxy.NodeServiceRules(cmd.Context(), "", ns, name)
			if err != nil {
				return err
			}
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

// newNetnsProxyCommand is the one-machine lab's port forwarder (hidden): it
// listens in this network namespace and dials the target from inside
// another, so the lab's API server is reachable from the machine without
// adding anything to the machine's own network.
func newNetnsProxyCommand() *cobra.Command {
	var netnsPath, listen, target string
	cmd := &cobra.Command{
		Use:    "netns-proxy --netns /run/netns/NAME --listen HOST:PORT --target HOST:PORT",
		Short:  "Forward a local port to an address inside a network namespace (the lab's API access)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if netnsPath == "" || listen == "" || target == "" {
				return fmt.Errorf("--netns, --listen and --target are all required")
			}
			return netnsproxy.Run(cmd.Context(), netnsPath, listen, target)
		},
	}
	cmd.Flags().StringVar(&netnsPath, "netns", "", "network namespace to dial from, e.g. /run/netns/kl-node1")
	cmd.Flags().StringVar(&listen, "listen", "", "address to listen on here, e.g. 127.0.0.1:16443")
	cmd.Flags().StringVar(&target, "target", "", "address to dial inside the namespace, e.g. 192.168.56.11:6443")
	return cmd
}

// newImagesCommand is `kubelite images build DIR`: the offline httpd and
// busybox images, built from the machine's busybox-static, with no Go
// toolchain needed (the Vagrant machines use it).
func newImagesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "images", Short: "Build kubelite's offline images"}
	busybox := images.DefaultBusybox
	build := &cobra.Command{
		Use:   "build OUTDIR",
		Short: "Write busybox.tar and httpd.tar (OCI image layouts) into OUTDIR",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := images.BuildAll(args[0], busybox)
			if err != nil {
				return err
			}
			for _, f := range files {
				fmt.Println(f)
			}
			return nil
		},
	}
	build.Flags().StringVar(&busybox, "busybox", busybox, "busybox-static binary to package")
	cmd.AddCommand(build)
	return cmd
}
