// Command kubelite is a whole Kubernetes-style cluster in one binary.
//
//	kubelite server     API server + etcd + controllers + DNS (+ a node agent)
//	kubelite agent      a node agent that joins a server
//	kubelite kubectl    the CLI, also installed as kubectl-lite
//
// This file only chooses the personality and wires flags to the parts.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	kubectl "kubelite/kubectl-lite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	streams := kubectl.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}

	var root *cobra.Command
	if filepath.Base(os.Args[0]) == "kubectl-lite" {
		root = kubectl.NewCommand(streams)
	} else {
		root = newRootCommand(streams)
	}
	cmd, err := root.ExecuteContextC(ctx)
	stop()
	// kubectl-lite prints its own errors in kubectl's words; the other
	// personalities' errors are printed here.
	if err != nil && !isKubectl(cmd) {
		fmt.Fprintln(os.Stderr, "Error:", err)
	}
	os.Exit(kubectl.ExitCode(err))
}

// isKubectl reports whether cmd belongs to the kubectl-lite command tree.
func isKubectl(cmd *cobra.Command) bool {
	for c := cmd; c != nil; c = c.Parent() {
		if c.Name() == "kubectl" || c.Name() == "kubectl-lite" {
			return true
		}
	}
	return false
}

func newRootCommand(streams kubectl.IOStreams) *cobra.Command {
	var logLevel string
	root := &cobra.Command{
		Use:           "kubelite",
		Short:         "A small, real Kubernetes-style cluster in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
			return nil
		},
	}
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")

	kubectlCmd := kubectl.NewCommand(streams)
	kubectlCmd.Use = "kubectl"
	kubectlCmd.Short = "Run kubectl-lite commands against the cluster"
	root.AddCommand(newServerCommand(), newAgentCommand(), newProxyCommand(), newNetnsProxyCommand(), newImagesCommand(), kubectlCmd)
	return root
}
