package kubectl

import (
	"context"
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/nodeagent/kubeletserver/remotecommand"
)

// AttachOptions are the options of `kubectl-lite attach`.
type AttachOptions struct {
	f *factory
	streamFlags

	target        string // POD or TYPE/NAME
	namespace     string
	attachCommand string // how to attach again: "kubectl-lite attach"
}

func newAttachCommand(f *factory) *cobra.Command {
	o := &AttachOptions{f: f}
	cmd := &cobra.Command{
		Use:                   "attach (POD | TYPE/NAME) -c CONTAINER",
		DisableFlagsInUseLine: true,
		Short:                 "Attach to a running container",
		Long:                  "Attach to a process that is already running inside an existing container.",
		Example: `  # Get output from running pod httpd; use the first container by default
  kubectl-lite attach httpd

  # Switch to raw terminal mode; sends stdin to the shell of pod busybox
  # (started with kubectl-lite run busybox -it --image=busybox) and its output back
  kubectl-lite attach busybox -c busybox -i -t

  # Get output from the first pod of a replica set named httpd-5d8f7c6b9
  kubectl-lite attach rs/httpd-5d8f7c6b9`,
		RunE: f.runE(o),
	}
	o.streamFlags.addTo(cmd.Flags(), "Container name. If omitted, use the kubectl.kubernetes.io/default-container annotation for selecting the container to be attached or the first container in the pod will be chosen")
	return cmd
}

// Complete reads POD or TYPE/NAME.
func (o *AttachOptions) Complete(cmd *cobra.Command, args []string) error {
	switch len(args) {
	case 0:
		return usageError(cmd, "at least 1 argument is required for attach")
	case 1:
		o.target = args[0]
	case 2:
		o.target = args[0] + "/" + args[1] // TYPE NAME
	default:
		return usageError(cmd, "expected POD, TYPE/NAME, or TYPE NAME, (at most 2 arguments) saw %d: %v", len(args), args)
	}
	o.namespace, _ = o.f.Namespace()
	o.attachCommand = cmd.CommandPath()
	return nil
}

// Validate has nothing left to check.
func (o *AttachOptions) Validate() error { return nil }

// Run attaches to the container.
func (o *AttachOptions) Run(ctx context.Context) error {
	c, err := o.f.Client()
	if err != nil {
		return err
	}
	pod, _, err := resolvePod(ctx, o.f, c, o.namespace, o.target)
	if err != nil {
		return err
	}
	return attach(ctx, o.f, c, pod, o.streamFlags, o.attachCommand)
}

// attach connects to a running container's streams until it exits or the
// session is left, as kubectl's attach does; `run -i` uses it too.
// attachCommand is how to attach again, for the message at the end.
func attach(ctx context.Context, f *factory, c *client.Client, pod *api.Pod, flags streamFlags, attachCommand string) error {
	errOut := f.streams.ErrOut
	if pod.Status.Phase == api.PodSucceeded || pod.Status.Phase == api.PodFailed {
		return fmt.Errorf("cannot attach a container in a completed pod; current phase is %s", pod.Status.Phase)
	}
	name, err := containerName(pod, flags.container, flags.quiet, errOut)
	if err != nil {
		return fmt.Errorf("cannot attach to the container: %w", err)
	}
	spec := containerSpec(pod, name)
	if spec == nil {
		return fmt.Errorf("cannot attach to the container: container %s not found in pod %s", name, pod.Name)
	}
	tty := flags.tty
	switch {
	case tty && !spec.TTY:
		tty = false
		if !flags.quiet {
			fmt.Fprintf(errOut, "error: Unable to use a TTY - container %s did not allocate one\n", name)
		}
	case !tty && spec.TTY:
		tty = true // the container's output is a terminal's: read it as one
	}
	s := newSession(f.streams, flags.stdin, tty, flags.quiet)

	var sizes []remotecommand.TerminalSize
	if s.terminal != nil {
		if size, ok := s.terminal.size(); ok {
			// One size too big, then the right one: the program in the
			// container redraws its screen for whoever attaches.
			bigger := remotecommand.TerminalSize{Width: size.Width + 1, Height: size.Height + 1}
			sizes = []remotecommand.TerminalSize{bigger, size}
		}
	}
	if !flags.quiet {
		fmt.Fprintln(errOut, "If you don't see a command prompt, try pressing enter.")
	}
	if err := s.run(ctx, c, podPath(pod.Namespace, pod.Name)+"/attach", url.Values{"container": {name}}, sizes...); err != nil {
		return err
	}
	if !flags.quiet && s.stdin != nil && s.terminal != nil && pod.Spec.RestartPolicy == api.RestartAlways {
		fmt.Fprintf(f.streams.Out, "Session ended, resume using '%s %s -c %s -i -t' command when the pod is running\n",
			attachCommand, pod.Name, name)
	}
	return nil
}
