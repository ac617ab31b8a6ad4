// Package kubectl is kubectl-lite, kubelite's kubectl: apply, create, run,
// get, describe, delete, logs, exec, attach, scale, rollout, version,
// api-resources and cluster-info, with kubectl's flags, output and error
// wording.
//
// Every command follows kubectl's shape: an Options struct filled by
// Complete (flags and arguments), checked by Validate and carried out by
// Run, writing only to the IOStreams it was given. Table printers and
// describers are pure functions from API objects to text (printers.go,
// describers.go), so they are tested with golden files.
package kubectl

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// IOStreams are the standard streams of a command, passed in so that
// commands run in tests without a terminal.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// ExitError is what a command returns once it has printed its failure on
// ErrOut in kubectl's words: the caller only has to exit with Code.
type ExitError struct {
	Code int
}

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// ExitCode is the process exit code for the error returned by Execute:
// 0 for nil, the code of an *ExitError, else 1.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	return 1
}

// NewCommand returns the kubectl-lite root command. Failures are printed
// on streams.ErrOut as kubectl prints them before Execute returns; the
// returned error only carries the exit code (see ExitCode).
func NewCommand(streams IOStreams) *cobra.Command {
	return newRootCommand(streams, osEnvironment())
}

// newRootCommand is NewCommand in a given environment, so that tests have
// a fixed clock and no kubeconfig of the machine.
func newRootCommand(streams IOStreams, env environment) *cobra.Command {
	f := newFactory(streams, env)
	root := &cobra.Command{
		Use:   "kubectl-lite",
		Short: "kubectl-lite controls the kubelite cluster manager",
		Long: "kubectl-lite controls the kubelite cluster manager.\n\n" +
			"It speaks the Kubernetes API and follows kubectl's commands, flags and output.",
		Args:          cobra.ArbitraryArgs,
		RunE:          f.parentRunE,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return f.report(usageError(cmd, "%v", err))
	})
	f.flags.addTo(root.PersistentFlags())

	root.AddGroup(
		&cobra.Group{ID: "basic", Title: "Basic Commands:"},
		&cobra.Group{ID: "deploy", Title: "Deploy Commands:"},
		&cobra.Group{ID: "cluster", Title: "Cluster Management Commands:"},
		&cobra.Group{ID: "troubleshooting", Title: "Troubleshooting and Debugging Commands:"},
		&cobra.Group{ID: "advanced", Title: "Advanced Commands:"},
		&cobra.Group{ID: "other", Title: "Other Commands:"},
	)
	addToGroup(root, "basic", newCreateCommand(f), newRunCommand(f), newGetCommand(f), newDeleteCommand(f))
	addToGroup(root, "deploy", newRolloutCommand(f), newScaleCommand(f))
	addToGroup(root, "cluster", newClusterInfoCommand(f))
	addToGroup(root, "troubleshooting", newDescribeCommand(f), newLogsCommand(f), newAttachCommand(f), newExecCommand(f))
	addToGroup(root, "advanced", newApplyCommand(f))
	addToGroup(root, "other", newAPIResourcesCommand(f), newVersionCommand(f))
	root.SetHelpCommandGroupID("other")
	root.SetCompletionCommandGroupID("other")
	return root
}

func addToGroup(root *cobra.Command, group string, cmds ...*cobra.Command) {
	for _, c := range cmds {
		c.GroupID = group
		root.AddCommand(c)
	}
}

// parentRunE is the RunE of a command that only groups sub-commands: help
// without arguments, else an unknown sub-command. (Unknown sub-commands
// reach RunE, rather than failing inside cobra, so that they are reported
// like every other error.)
func (f *factory) parentRunE(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	return f.report(fmt.Errorf("unknown command %q for %q\nRun '%s --help' for usage", args[0], cmd.CommandPath(), cmd.CommandPath()))
}

// options is the kubectl command shape: Complete fills the options from
// flags and arguments, Validate checks them, Run does the work.
type options interface {
	Complete(cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// runE adapts options to cobra: the phases run in order and the first
// failure is printed kubectl-style.
func (f *factory) runE(o options) func(cmd *cobra.Command, args []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(cmd, args); err != nil {
			return f.report(err)
		}
		if err := o.Validate(); err != nil {
			return f.report(err)
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		return f.report(o.Run(ctx))
	}
}

// report prints err as kubectl does and turns it into an *ExitError.
func (f *factory) report(err error) error {
	if err == nil {
		return nil
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		return exit // already reported
	}
	fmt.Fprint(f.streams.ErrOut, errorMessage(err))
	return &ExitError{Code: 1}
}

// usageError is kubectl's cmdutil.UsageErrorf: the message and a hint.
func usageError(cmd *cobra.Command, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return fmt.Errorf("%s\nSee '%s -h' for help and examples", msg, cmd.CommandPath())
}

// flagChanged reports whether the user set the named flag.
func flagChanged(flags *pflag.FlagSet, name string) bool {
	fl := flags.Lookup(name)
	return fl != nil && fl.Changed
}
