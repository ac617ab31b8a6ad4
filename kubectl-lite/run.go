package kubectl

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kubelite/api"
	"kubelite/api/client"
)

// RunOptions are the options of `kubectl-lite run`.
type RunOptions struct {
	f *factory
	streamFlags

	image             string
	restart           string
	remove            bool
	attachFlag        bool
	command           bool
	env               []string
	port              string
	labels            string
	imagePullPolicy   string
	podRunningTimeout time.Duration

	name          string
	args          []string
	attach        bool // -i or --attach: stay connected to the container
	namespace     string
	attachCommand string // how to attach again: "kubectl-lite attach"
}

func newRunCommand(f *factory) *cobra.Command {
	o := &RunOptions{f: f}
	cmd := &cobra.Command{
		Use:                   "run NAME --image=image [--env=\"key=value\"] [--port=port] [--restart=Always|OnFailure|Never] [--command] -- [COMMAND] [args...]",
		DisableFlagsInUseLine: true,
		Short:                 "Run a particular image on the cluster",
		Long:                  "Create and run a particular image in a pod.",
		Example: `  # Start an httpd pod
  kubectl-lite run httpd --image=httpd

  # Start a busybox pod and keep it in the foreground; delete it when the shell exits
  kubectl-lite run busybox --rm -it --image=busybox

  # Start a pod that runs one command, and show its output and exit code
  kubectl-lite run probe --rm -i --restart=Never --image=busybox -- wget -qO- httpd-svc:8080

  # Start a pod whose command replaces the image's entrypoint
  kubectl-lite run sleeper --image=busybox --command -- sleep 3600`,
		RunE: f.runE(o),
	}
	flags := cmd.Flags()
	flags.StringVar(&o.image, "image", "", "The image for the container to run.")
	flags.StringVar(&o.restart, "restart", api.RestartAlways, "The restart policy for this Pod.  Legal values [Always, OnFailure, Never].")
	flags.BoolVar(&o.remove, "rm", false, "If true, delete the pod after it exits.  Only valid when attaching to the container, e.g. with '--attach' or with '-i/--stdin'.")
	flags.BoolVar(&o.attachFlag, "attach", false, "If true, wait for the Pod to start running, and then attach to the Pod as if 'kubectl-lite attach ...' were called.  Default false, unless '-i/--stdin' is set, in which case the default is true.")
	flags.BoolVar(&o.command, "command", false, "If true and extra arguments are present, use them as the 'command' field in the container, rather than the 'args' field which is the default.")
	flags.StringArrayVar(&o.env, "env", nil, "Environment variables to set in the container.")
	flags.StringVar(&o.port, "port", "", "The port that this container exposes.")
	flags.StringVarP(&o.labels, "labels", "l", "", "Comma separated labels to apply to the pod. Will override previous values.")
	flags.StringVar(&o.imagePullPolicy, "image-pull-policy", "", "The image pull policy for the container.  If left empty, this value will not be specified by the client and defaulted by the server.")
	flags.DurationVar(&o.podRunningTimeout, "pod-running-timeout", time.Minute, "The length of time (like 5s, 2m, or 3h, higher than zero) to wait until at least one pod is running")
	flags.BoolVarP(&o.stdin, "stdin", "i", false, "Keep stdin open on the container in the pod, even if nothing is attached.")
	flags.BoolVarP(&o.tty, "tty", "t", false, "Allocate a TTY for the container in the pod.")
	flags.BoolVarP(&o.quiet, "quiet", "q", false, "If true, suppress prompt messages.")
	return cmd
}

// Complete reads NAME and the container's arguments after it.
func (o *RunOptions) Complete(cmd *cobra.Command, args []string) error {
	if len(args) == 0 || cmd.ArgsLenAtDash() == 0 {
		return usageError(cmd, "NAME is required for run")
	}
	o.name, o.args = args[0], args[1:]
	o.attach = o.attachFlag || (o.stdin && !flagChanged(cmd.Flags(), "attach"))
	o.container = o.name
	o.namespace, _ = o.f.Namespace()
	o.attachCommand = cmd.Parent().CommandPath() + " attach"
	return nil
}

// Validate checks the flags as kubectl does.
func (o *RunOptions) Validate() error {
	switch {
	case o.image == "":
		return errors.New(`required flag(s) "image" not set`)
	case o.restart != api.RestartAlways && o.restart != api.RestartOnFailure && o.restart != api.RestartNever:
		return fmt.Errorf("invalid restart policy: %s", o.restart)
	case o.remove && !o.attach:
		return errors.New("--rm should only be used for attached containers")
	case o.tty && !o.stdin:
		return errors.New("-i/--stdin is required for containers with -t/--tty=true")
	case o.podRunningTimeout <= 0:
		return errors.New("--pod-running-timeout must be higher than zero")
	}
	_, err := o.pod()
	return err
}

// pod is the Pod that run creates: one container named after it, labelled
// run=NAME unless --labels says otherwise.
func (o *RunOptions) pod() (*api.Pod, error) {
	container := api.Container{
		Name:            o.name,
		Image:           o.image,
		ImagePullPolicy: o.imagePullPolicy,
		Stdin:           o.stdin,
		StdinOnce:       o.stdin, // the first attached session's end closes it: the shell exits
		TTY:             o.tty,
	}
	if len(o.args) > 0 {
		if o.command {
			container.Command = o.args
		} else {
			container.Args = o.args
		}
	}
	for _, kv := range o.env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("invalid env: %s", kv)
		}
		container.Env = append(container.Env, api.EnvVar{Name: name, Value: value})
	}
	if o.port != "" {
		port, err := strconv.ParseInt(o.port, 10, 32)
		if err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("invalid port: %s", o.port)
		}
		container.Ports = []api.ContainerPort{{ContainerPort: int32(port)}}
	}
	labels := map[string]string{"run": o.name}
	if o.labels != "" {
		labels = map[string]string{}
		for _, kv := range strings.Split(o.labels, ",") {
			key, value, ok := strings.Cut(kv, "=")
			if !ok || key == "" {
				return nil, fmt.Errorf("invalid label spec: %s", kv)
			}
			labels[key] = value
		}
	}
	return &api.Pod{
		TypeMeta:   api.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: api.ObjectMeta{Name: o.name, Namespace: o.namespace, Labels: labels},
		Spec: api.PodSpec{
			Containers:    []api.Container{container},
			RestartPolicy: o.restart,
			DNSPolicy:     "ClusterFirst",
		},
	}, nil
}

// Run creates the Pod; when attaching, it waits for the Pod to run,
// attaches, and with --restart=Never or OnFailure passes the container's
// exit code through; with --rm it deletes the Pod at the end.
func (o *RunOptions) Run(ctx context.Context) (err error) {
	c, err := o.f.Client()
	if err != nil {
		return err
	}
	pod, err := o.pod()
	if err != nil {
		return err
	}
	if _, err := client.For[api.Pod](c, o.namespace).Create(ctx, pod); err != nil {
		return err
	}
	if !o.attach {
		fmt.Fprintf(o.f.streams.Out, "pod/%s created\n", o.name)
		return nil
	}
	if o.remove {
		defer func() { err = errors.Join(err, o.deletePod(ctx, c)) }()
	}

	running, err := waitForPod(ctx, c, o.namespace, o.name, o.podRunningTimeout, podRunningAndReady)
	switch {
	case errors.Is(err, errPodCompleted):
		if err := o.printLogs(ctx); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if err := attach(ctx, o.f, c, running, o.streamFlags, o.attachCommand); err != nil {
			fmt.Fprintf(o.f.streams.ErrOut, "warning: couldn't attach to pod/%s, falling back to streaming logs: %v\n", o.name, err)
			if err := o.printLogs(ctx); err != nil {
				return err
			}
		}
	}
	if o.restart == api.RestartAlways {
		return nil // the container restarts: there is no exit code to wait for
	}
	exited := podCompleted
	if o.restart == api.RestartOnFailure {
		exited = podSucceeded
	}
	done, err := waitForPod(ctx, c, o.namespace, o.name, o.podRunningTimeout, exited)
	if err != nil && !errors.Is(err, errPodCompleted) {
		return err
	}
	return o.exitCode(done)
}

// exitCode is the outcome of a Pod that has completed, as kubectl reports it.
func (o *RunOptions) exitCode(pod *api.Pod) error {
	switch pod.Status.Phase {
	case api.PodSucceeded:
		return nil
	case api.PodFailed:
		statuses := pod.Status.ContainerStatuses
		if len(statuses) == 0 || statuses[0].State.Terminated == nil || statuses[0].State.Terminated.ExitCode == 0 {
			return fmt.Errorf("pod %s/%s failed with unknown exit code", pod.Namespace, pod.Name)
		}
		terminated := statuses[0].State.Terminated
		msg := fmt.Sprintf("pod %s/%s terminated (%s)\n%s", pod.Namespace, pod.Name, terminated.Reason, terminated.Message)
		fmt.Fprint(o.f.streams.ErrOut, strings.TrimSuffix(msg, "\n")+"\n")
		return &ExitError{Code: int(terminated.ExitCode)}
	}
	return fmt.Errorf("pod %s/%s left in phase %s", pod.Namespace, pod.Name, pod.Status.Phase)
}

// printLogs shows the output of a Pod that could not be attached to.
func (o *RunOptions) printLogs(ctx context.Context) error {
	logs := &LogsOptions{f: o.f, target: o.name, container: o.name, namespace: o.namespace, tail: -1}
	return logs.Run(ctx)
}

// deletePod deletes the Pod at the end of the session, even when it ends
// because the user interrupted it.
func (o *RunOptions) deletePod(ctx context.Context, c *client.Client) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := client.For[api.Pod](c, o.namespace).Delete(ctx, o.name, client.DeleteOptions{})
	if api.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(o.f.streams.Out, "%s deleted\n", quotedName(api.ResourceFor(&api.Pod{}), o.name))
	return nil
}

// errPodCompleted is a wait's answer when the Pod ran to completion
// before it could be attached to.
var errPodCompleted = errors.New("pod ran to completion")

// A podCondition says whether a wait is over, and why if it failed.
type podCondition func(*api.Pod) (done bool, err error)

func podRunningAndReady(pod *api.Pod) (bool, error) {
	switch pod.Status.Phase {
	case api.PodSucceeded, api.PodFailed:
		return true, errPodCompleted
	case api.PodRunning:
		return isRunningAndReady(pod), nil
	}
	return false, nil
}

func podCompleted(pod *api.Pod) (bool, error) {
	return pod.Status.Phase == api.PodSucceeded || pod.Status.Phase == api.PodFailed, nil
}

func podSucceeded(pod *api.Pod) (bool, error) {
	return pod.Status.Phase == api.PodSucceeded, nil
}

// waitForPod watches the Pod until done says so, for at most timeout.
func waitForPod(ctx context.Context, c *client.Client, namespace, name string, timeout time.Duration, done podCondition) (*api.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pods := client.For[api.Pod](c, namespace)
	fieldSelector := "metadata.name=" + name
	backoff := initialRewatchPause
	for {
		// List (rather than get) to learn the resourceVersion to watch from.
		list, err := pods.List(ctx, client.ListOptions{FieldSelector: fieldSelector})
		if err != nil {
			return nil, waitError(ctx, err)
		}
		if len(list.Items) == 0 {
			return nil, api.NewNotFound("", "pods", name)
		}
		pod := &list.Items[0]
		if ok, err := done(pod); ok || err != nil {
			return pod, err
		}
		events, err := pods.Watch(ctx, client.ListOptions{FieldSelector: fieldSelector, ResourceVersion: list.ResourceVersion})
		if err != nil {
			return nil, waitError(ctx, err)
		}
		for ev := range events {
			switch ev.Type {
			case api.Added, api.Modified:
				if ok, err := done(ev.Object); ok || err != nil {
					return ev.Object, err
				}
			case api.Deleted:
				return nil, api.NewNotFound("", "pods", name)
			case api.Error:
				if ev.Err != nil && !api.IsGone(ev.Err) && ctx.Err() == nil {
					return nil, ev.Err
				}
			}
		}
		// The watch ended (a server timeout, a compaction): look again.
		if err := pause(ctx, &backoff); err != nil {
			return nil, waitError(ctx, err)
		}
	}
}

func waitError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errors.New("timed out waiting for the condition")
	}
	return err
}
