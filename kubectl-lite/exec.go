package kubectl

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"kubelite/api"
	"kubelite/nodeagent/kubeletserver/remotecommand"
)

// ExecOptions are the options of `kubectl-lite exec`.
type ExecOptions struct {
	f *factory
	streamFlags

	target    string // POD or TYPE/NAME
	command   []string
	namespace string
}

func newExecCommand(f *factory) *cobra.Command {
	o := &ExecOptions{f: f}
	cmd := &cobra.Command{
		Use:                   "exec (POD | TYPE/NAME) [-c CONTAINER] [flags] -- COMMAND [args...]",
		DisableFlagsInUseLine: true,
		Short:                 "Execute a command in a container",
		Long: "Execute a command in a container.\n\n" +
			"The command's exit code is kubectl-lite's: a command that fails prints " +
			"'command terminated with exit code N' and exits with N.",
		Example: `  # Get output from running the 'date' command in pod httpd, using the first container by default
  kubectl-lite exec httpd -- date

  # Switch to raw terminal mode; sends stdin to 'sh' in pod busybox and sends stdout/stderr back
  kubectl-lite exec -it busybox -- sh

  # Get the page of a Service from inside a pod
  kubectl-lite exec busybox -- wget -qO- httpd-svc:8080

  # Run a command in the first pod of the httpd deployment
  kubectl-lite exec deploy/httpd -- ls /`,
		RunE: f.runE(o),
	}
	o.streamFlags.addTo(cmd.Flags(), "Container name. If omitted, use the kubectl.kubernetes.io/default-container annotation for selecting the container to be attached or the first container in the pod will be chosen")
	return cmd
}

// Complete reads the Pod and the command after "--".
func (o *ExecOptions) Complete(cmd *cobra.Command, args []string) error {
	dash := cmd.ArgsLenAtDash()
	switch {
	case len(args) == 0 || dash == 0:
		return usageError(cmd, "pod or type/name must be specified")
	case dash == -1 && len(args) > 1, dash > 1:
		return usageError(cmd, "exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead")
	}
	o.target = args[0]
	if dash > 0 {
		o.command = args[dash:]
	}
	o.namespace, _ = o.f.Namespace()
	return nil
}

// Validate checks that there is a command.
func (o *ExecOptions) Validate() error {
	if len(o.command) == 0 {
		return errors.New("you must specify at least one command for the container")
	}
	return nil
}

// Run runs the command in the container, streaming its input and output;
// its exit code becomes kubectl-lite's.
func (o *ExecOptions) Run(ctx context.Context) error {
	c, err := o.f.Client()
	if err != nil {
		return err
	}
	pod, _, err := resolvePod(ctx, o.f, c, o.namespace, o.target)
	if err != nil {
		return err
	}
	if pod.Status.Phase == api.PodSucceeded || pod.Status.Phase == api.PodFailed {
		return fmt.Errorf("cannot exec into a container in a completed pod; current phase is %s", pod.Status.Phase)
	}
	container, err := containerName(pod, o.container, o.quiet, o.f.streams.ErrOut)
	if err != nil {
		return err
	}
	s := newSession(o.f.streams, o.stdin, o.tty, o.quiet)
	query := url.Values{"command": o.command, "container": {container}}
	return exitCodeOf(s.run(ctx, c, podPath(pod.Namespace, pod.Name)+"/exec", query), o.f.streams)
}

// exitCodeOf passes a remote command's exit code through as kubectl does:
// `command terminated with exit code N` on stderr, and exit status N.
func exitCodeOf(err error, streams IOStreams) error {
	var exit *remotecommand.ExitError
	if errors.As(err, &exit) {
		fmt.Fprintln(streams.ErrOut, exit.Error())
		return &ExitError{Code: exit.Code}
	}
	return err
}
