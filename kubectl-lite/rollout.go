package kubectl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"kubelite/api"
	"kubelite/api/client"
)

// progressDeadlineExceeded is the Progressing reason of a stuck rollout.
const progressDeadlineExceeded = "ProgressDeadlineExceeded"

func newRolloutCommand(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:                   "rollout SUBCOMMAND",
		DisableFlagsInUseLine: true,
		Short:                 "Manage the rollout of a resource",
		Long:                  "Manage the rollout of one or many resources.\n\nValid resource types include:\n\n  * deployments",
		Example: `  # Watch the rollout status of a deployment
  kubectl-lite rollout status deployment/httpd`,
		Args: cobra.ArbitraryArgs,
		RunE: f.parentRunE,
	}
	cmd.AddCommand(newRolloutStatusCommand(f))
	return cmd
}

// RolloutStatusOptions are the options of `rollout status`.
type RolloutStatusOptions struct {
	f *factory

	watch   bool
	timeout time.Duration

	resource  *api.Resource
	name      string
	namespace string
}

func newRolloutStatusCommand(f *factory) *cobra.Command {
	o := &RolloutStatusOptions{f: f}
	cmd := &cobra.Command{
		Use:                   "status (TYPE NAME | TYPE/NAME) [flags]",
		DisableFlagsInUseLine: true,
		Short:                 "Show the status of the rollout",
		Long: "Show the status of the rollout.\n\n" +
			"By default 'rollout status' will watch the status of the latest rollout until it's done. " +
			"If you don't want to wait for the rollout to finish then you can use --watch=false.",
		Example: `  # Watch the rollout status of a deployment
  kubectl-lite rollout status deployment/httpd`,
		RunE: f.runE(o),
	}
	cmd.Flags().BoolVarP(&o.watch, "watch", "w", true, "Watch the status of the rollout until it's done.")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 0, "The length of time to wait before ending watch, zero means never. Any other values should contain a corresponding time unit (e.g. 1s, 2m, 3h).")
	return cmd
}

// Complete finds the one deployment to follow.
func (o *RolloutStatusOptions) Complete(cmd *cobra.Command, args []string) error {
	groups, err := parseResourceArgs(o.f.scheme, args)
	if err != nil {
		return err
	}
	if len(groups) != 1 || len(groups[0].names) != 1 {
		return usageError(cmd, "Required resource not specified.")
	}
	o.resource, o.name = groups[0].resource, groups[0].names[0]
	o.namespace, _ = o.f.Namespace()
	return nil
}

// Validate checks that the resource has a rollout.
func (o *RolloutStatusOptions) Validate() error {
	if o.resource.Kind != "Deployment" {
		return fmt.Errorf("no status viewer has been implemented for %s", o.resource.Kind)
	}
	return nil
}

// Run prints the rollout status of each version of the deployment it sees
// until the rollout is done: the current one, then one per change.
func (o *RolloutStatusOptions) Run(ctx context.Context) error {
	c, err := o.f.Client()
	if err != nil {
		return err
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	dyn := c.Resource(o.resource, o.namespace)
	// List with a field selector (rather than get) to learn the
	// resourceVersion that the watch continues from.
	fieldSelector := "metadata.name=" + o.name
	backoff := initialRewatchPause
	for {
		deployment, rv, err := o.current(ctx, dyn, fieldSelector)
		if err != nil {
			return o.timeoutError(ctx, err)
		}
		message, done, err := deploymentRolloutStatus(deployment)
		if err != nil {
			return err
		}
		fmt.Fprint(o.f.streams.Out, message)
		if done || !o.watch {
			return nil
		}
		events, err := dyn.Watch(ctx, client.ListOptions{FieldSelector: fieldSelector, ResourceVersion: rv})
		if err != nil {
			return o.timeoutError(ctx, err)
		}
		done, err = o.follow(events)
		if err != nil || done {
			return err
		}
		// The watch ended without an answer (server timeout): list again.
		if err := pause(ctx, &backoff); err != nil {
			return o.timeoutError(ctx, err)
		}
	}
}

// current reads the deployment and the resourceVersion of the read.
func (o *RolloutStatusOptions) current(ctx context.Context, dyn *client.Dynamic, fieldSelector string) (*api.Deployment, string, error) {
	body, err := dyn.List(ctx, client.ListOptions{FieldSelector: fieldSelector})
	if err != nil {
		return nil, "", err
	}
	list, err := decodeList(o.resource, body)
	if err != nil {
		return nil, "", err
	}
	for _, obj := range list.objects {
		if d := obj.(*api.Deployment); d.Name == o.name {
			return d, list.resourceVersion, nil
		}
	}
	return nil, "", api.NewNotFound(o.resource.Group, o.resource.Plural, o.name)
}

// follow prints the status of each change; it reports whether the rollout
// finished before the stream ended.
func (o *RolloutStatusOptions) follow(events <-chan client.RawEvent) (bool, error) {
	for ev := range events {
		switch ev.Type {
		case api.Added, api.Modified:
			obj, err := decodeObject(o.resource, ev.Object)
			if err != nil {
				return false, err
			}
			d := obj.(*api.Deployment)
			if d.Name != o.name {
				continue
			}
			message, done, err := deploymentRolloutStatus(d)
			if err != nil {
				return false, err
			}
			fmt.Fprint(o.f.streams.Out, message)
			if done {
				return true, nil
			}
		case api.Deleted:
			return false, errors.New("object has been deleted")
		case api.Error:
			if ev.Err != nil && !api.IsGone(ev.Err) {
				return false, ev.Err
			}
			return false, nil
		}
	}
	return false, nil
}

func (o *RolloutStatusOptions) timeoutError(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errors.New("timed out waiting for the condition")
	}
	return err
}

// deploymentRolloutStatus is kubectl's DeploymentStatusViewer: a message
// and whether the rollout is complete.
func deploymentRolloutStatus(d *api.Deployment) (string, bool, error) {
	if d.Generation > d.Status.ObservedGeneration {
		return "Waiting for deployment spec update to be observed...\n", false, nil
	}
	for _, c := range d.Status.Conditions {
		if c.Type == api.DeploymentProgressing && c.Reason == progressDeadlineExceeded {
			return "", false, fmt.Errorf("deployment %q exceeded its progress deadline", d.Name)
		}
	}
	switch {
	case d.Spec.Replicas != nil && d.Status.UpdatedReplicas < *d.Spec.Replicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...\n",
			d.Name, d.Status.UpdatedReplicas, *d.Spec.Replicas), false, nil
	case d.Status.Replicas > d.Status.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...\n",
			d.Name, d.Status.Replicas-d.Status.UpdatedReplicas), false, nil
	case d.Status.AvailableReplicas < d.Status.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...\n",
			d.Name, d.Status.AvailableReplicas, d.Status.UpdatedReplicas), false, nil
	}
	return fmt.Sprintf("deployment %q successfully rolled out\n", d.Name), true, nil
}
