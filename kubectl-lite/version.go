package kubectl

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// versionInfo is the body of /version (apimachinery's version.Info).
type versionInfo struct {
	Major        string `json:"major"`
	Minor        string `json:"minor"`
	GitVersion   string `json:"gitVersion"`
	GitCommit    string `json:"gitCommit,omitempty"`
	GitTreeState string `json:"gitTreeState,omitempty"`
	BuildDate    string `json:"buildDate,omitempty"`
	GoVersion    string `json:"goVersion"`
	Compiler     string `json:"compiler"`
	Platform     string `json:"platform"`
}

// VersionOptions are the options of `kubectl-lite version`.
type VersionOptions struct {
	f          *factory
	clientOnly bool
	output     string
}

func newVersionCommand(f *factory) *cobra.Command {
	o := &VersionOptions{f: f}
	cmd := &cobra.Command{
		Use:                   "version [--client] [-o json|yaml]",
		DisableFlagsInUseLine: true,
		Short:                 "Print the client and server version information",
		Long:                  "Print the client and server version information for the current context.",
		Example: `  # Print the client and server versions for the current context
  kubectl-lite version`,
		RunE: f.runE(o),
	}
	cmd.Flags().BoolVar(&o.clientOnly, "client", false, "If true, shows client version only (no server required).")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "One of 'yaml' or 'json'.")
	return cmd
}

// Complete takes no arguments.
func (o *VersionOptions) Complete(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError(cmd, "Unexpected args: %v", args)
	}
	return nil
}

// Validate checks the output format.
func (o *VersionOptions) Validate() error {
	if o.output != "" && o.output != outputJSON && o.output != outputYAML {
		return fmt.Errorf("--output must be 'yaml' or 'json'")
	}
	return nil
}

// Run prints the client version and the server's /version.
func (o *VersionOptions) Run(ctx context.Context) error {
	clientInfo := versionInfo{
		Major: "1", Minor: "32", GitVersion: clientVersion,
		GoVersion: runtime.Version(), Compiler: runtime.Compiler,
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
	var serverInfo *versionInfo
	var serverErr error
	if !o.clientOnly {
		serverInfo, serverErr = o.serverVersion(ctx)
	}
	out := o.f.streams.Out
	switch o.output {
	case outputJSON, outputYAML:
		doc := map[string]any{"clientVersion": clientInfo}
		if serverInfo != nil {
			doc["serverVersion"] = serverInfo
		}
		if err := writeDocument(out, o.output, doc); err != nil {
			return err
		}
	default:
		fmt.Fprintf(out, "Client Version: %s\n", clientInfo.GitVersion)
		if serverInfo != nil {
			fmt.Fprintf(out, "Server Version: %s\n", serverInfo.GitVersion)
		}
	}
	return serverErr
}

func (o *VersionOptions) serverVersion(ctx context.Context) (*versionInfo, error) {
	c, err := o.f.Client()
	if err != nil {
		return nil, err
	}
	body, err := c.Do(ctx, "GET", "/version", nil, nil)
	if err != nil {
		return nil, err
	}
	var info versionInfo
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("decoding /version: %w", err)
	}
	return &info, nil
}
