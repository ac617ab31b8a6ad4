package podworker

import (
	"context"
	"fmt"
	"os"
	"time"

	"kubelite/api"
	"kubelite/nodeagent/runtime"
)

// syncInitContainers runs the init containers one after the other, each to
// a successful exit, as the kubelet does before any app container starts.
// It reports whether all have completed, and otherwise when to sync again.
// A failed one is restarted with the back-off unless the policy is Never.
func (w *podWorker) syncInitContainers(ctx context.Context, pod *api.Pod) (initialized bool, next time.Duration) {
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		set := w.containerSet(c.Name)
		cur := set.current
		switch {
		case cur == nil:
			return false, w.startContainer(ctx, pod, c, set, 0)
		case cur.status.State == runtime.StateRunning:
			w.watch(ctx, pod, c, cur)
			return false, w.m.cfg.ResyncPeriod
		case exited(cur.status) && cur.status.ExitCode == 0 && cur.sandboxID == w.sandboxID(pod):
			continue // completed (in this pod network: a new one runs them all again)
		case exited(cur.status) && cur.status.ExitCode == 0:
			return false, w.startContainer(ctx, pod, c, set, cur.attempt+1)
		case pod.Spec.RestartPolicy == api.RestartNever:
			set.waiting = nil
			return false, w.m.cfg.ResyncPeriod // the Pod has failed
		default:
			return false, w.restartWithBackOff(ctx, pod, c, set)
		}
	}
	return true, 0
}

// containerSet returns the record of a container of the Pod, making it
// when there is none yet.
func (w *podWorker) containerSet(name string) *containerSet {
	set := w.containers[name]
	if set == nil {
		set = &containerSet{}
		w.containers[name] = set
	}
	return set
}

// syncContainer moves one container along its state machine (see the
// package documentation) and says when it next needs attention.
func (w *podWorker) syncContainer(ctx context.Context, pod *api.Pod, c *api.Container) time.Duration {
	resync := w.m.cfg.ResyncPeriod
	set := w.containerSet(c.Name)
	cur := set.current
	if cur == nil {
		return w.startContainer(ctx, pod, c, set, 0)
	}

	if cur.status.State == runtime.StateRunning {
		reason := ""
		switch {
		case cur.sandboxID != w.sandboxID(pod):
			reason = fmt.Sprintf("Container %s's pod network was replaced, it will be killed and re-created", c.Name)
		case cur.image != normalizedImage(c.Image):
			reason = fmt.Sprintf("Container %s definition changed, will be restarted", c.Name)
		default:
			w.watch(ctx, pod, c, cur)
			if kind, failed := w.probeFailed(cur.id); failed {
				reason = fmt.Sprintf("Container %s failed %s probe, will be restarted", c.Name, lower(kind))
			}
		}
		if reason == "" {
			set.waiting = nil
			return resync
		}
		w.event(pod, api.EventNormal, "Killing", reason)
		w.stopContainer(ctx, cur, containerGracePeriod(pod, c))
		if !exited(cur.status) {
			return time.Second // it did not stop: try again
		}
		// Killed by the agent, not crashed: as the kubelet, restart it at
		// once (if the policy restarts it), without a back-off.
		if shouldRestart(pod.Spec.RestartPolicy, cur.status.ExitCode) {
			return w.startContainer(ctx, pod, c, set, cur.attempt+1)
		}
		return resync
	}

	// Exited (or its exit was never recorded).
	if !shouldRestart(pod.Spec.RestartPolicy, cur.status.ExitCode) {
		set.waiting = nil
		return resync
	}
	return w.restartWithBackOff(ctx, pod, c, set)
}

// restartWithBackOff starts the next attempt of an exited container: at
// once the first time, then only once the crash back-off since its exit
// has passed, showing CrashLoopBackOff meanwhile.
func (w *podWorker) restartWithBackOff(ctx context.Context, pod *api.Pod, c *api.Container, set *containerSet) time.Duration {
	cur := set.current
	now := time.Now()
	if wait, until := w.crashBackOff.InBackOffSince(c.Name, cur.status.FinishedAt, now); wait {
		if set.waiting == nil || set.waiting.Reason != ReasonCrashLoopBackOff {
			w.event(pod, api.EventWarning, "BackOff", fmt.Sprintf("Back-off restarting failed container %s in pod %s", c.Name, podDescription(pod)))
		}
		set.waiting = &api.ContainerStateWaiting{
			Reason: ReasonCrashLoopBackOff,
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s",
				w.crashBackOff.Delay(c.Name), c.Name, podDescription(pod)),
		}
		return time.Until(until)
	}
	w.crashBackOff.Next(c.Name, cur.status.FinishedAt)
	return w.startContainer(ctx, pod, c, set, cur.attempt+1)
}

// startContainer runs one attempt of a container: image, create, start.
func (w *podWorker) startContainer(ctx context.Context, pod *api.Pod, c *api.Container, set *containerSet, attempt int) time.Duration {
	resync := w.m.cfg.ResyncPeriod
	now := time.Now()
	createKey := "create " + c.Name
	if wait, until := w.crashBackOff.InBackOffSinceUpdate(createKey, now); wait && set.waiting != nil {
		return time.Until(until) // the last create failed: keep its error shown until the back-off ends
	}
	if wait, until := w.imageBackOff.InBackOffSinceUpdate(c.Image, now); wait {
		if set.waiting == nil || set.waiting.Reason != ReasonImagePullBackOff {
			w.event(pod, api.EventNormal, "BackOff", fmt.Sprintf("Back-off pulling image %q", c.Image))
		}
		set.waiting = &api.ContainerStateWaiting{Reason: ReasonImagePullBackOff, Message: fmt.Sprintf("Back-off pulling image %q", c.Image)}
		return time.Until(until)
	}
	pullCtx, cancel := context.WithTimeout(ctx, w.m.cfg.ImagePullTimeout)
	img, err := w.m.cfg.Runtime.EnsureImage(pullCtx, c.Image, pullPolicy(c))
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return resync
		}
		reason := runtime.ImageErrorReason(err)
		if reason == "" {
			reason = ReasonErrImagePull
		}
		w.imageBackOff.Next(c.Image, now)
		set.waiting = &api.ContainerStateWaiting{Reason: reason, Message: err.Error()}
		w.event(pod, api.EventWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %v", c.Image, err))
		w.event(pod, api.EventWarning, "Failed", "Error: "+reason)
		// Sync again soon (within the back-off), to show that the pull
		// is now backing off.
		return min(time.Second, w.imageBackOff.Delay(c.Image)/2)
	}
	w.imageBackOff.Reset(c.Image)
	w.event(pod, api.EventNormal, "Pulled", fmt.Sprintf("Container image %q is present as %s", c.Image, img.Name))

	spec, err := w.containerSpec(pod, c, attempt, img)
	var id string
	if err == nil {
		id, err = w.m.cfg.Runtime.CreateContainer(ctx, spec)
	}
	if err != nil {
		if ctx.Err() != nil {
			return resync
		}
		w.crashBackOff.Next(createKey, now)
		set.waiting = &api.ContainerStateWaiting{Reason: ReasonCreateContainerError, Message: err.Error()}
		w.event(pod, api.EventWarning, "Failed", "Error: "+err.Error())
		return w.crashBackOff.Delay(createKey)
	}
	w.crashBackOff.Reset(createKey)
	w.event(pod, api.EventNormal, "Created", "Created container "+c.Name)
	rec := &containerRecord{
		id: id, attempt: attempt, logPath: spec.LogPath, image: img.Name, imageID: imageID(img),
		sandboxID: w.sandboxID(pod), status: runtime.ContainerStatus{State: runtime.StateCreated},
	}
	w.replaceCurrent(ctx, set, rec)

	if err := w.m.cfg.Runtime.Start(ctx, id); err != nil {
		if ctx.Err() != nil {
			return resync
		}
		// The kubelet's StartError: the attempt counts as run and exited
		// with 128, and restarts follow the policy and the back-off.
		rec.startError = err.Error()
		rec.status = runtime.ContainerStatus{State: runtime.StateExited, ExitCode: 128, FinishedAt: now}
		set.waiting = nil
		if shouldRestart(pod.Spec.RestartPolicy, rec.status.ExitCode) {
			set.waiting = &api.ContainerStateWaiting{Reason: ReasonRunContainerError, Message: err.Error()}
		}
		w.event(pod, api.EventWarning, "Failed", "Error: "+err.Error())
		w.crashBackOff.Next(c.Name, now)
		return w.crashBackOff.Delay(c.Name)
	}
	if status, err := w.m.cfg.Runtime.Status(ctx, id); err == nil {
		rec.status = status
	} else {
		rec.status = runtime.ContainerStatus{State: runtime.StateRunning, StartedAt: time.Now()}
	}
	set.waiting = nil
	w.event(pod, api.EventNormal, "Started", "Started container "+c.Name)
	w.log.Info("started container", "container", c.Name, "id", id, "attempt", attempt)
	if rec.status.State != runtime.StateRunning {
		return 0 // it exited already: sync again at once to see to it
	}
	w.watch(ctx, pod, c, rec)
	return resync
}

// replaceCurrent makes rec the current container; the current one becomes
// previous, and the previous one is removed with its log.
func (w *podWorker) replaceCurrent(ctx context.Context, set *containerSet, rec *containerRecord) {
	if old := set.previous; old != nil {
		if err := w.m.cfg.Runtime.Remove(ctx, old.id); err != nil {
			w.log.Warn("could not remove an old container", "id", old.id, "err", err)
			w.strays = append(w.strays, old.id)
		}
		if old.logPath != "" {
			os.Remove(old.logPath)
		}
	}
	if set.current != nil {
		w.unwatch(set.current.id)
	}
	set.previous, set.current = set.current, rec
}

// stopContainer stops a running container within its grace period and
// records how it ended.
func (w *podWorker) stopContainer(ctx context.Context, rec *containerRecord, grace time.Duration) {
	w.unwatch(rec.id)
	if err := w.m.cfg.Runtime.Stop(ctx, rec.id, grace); err != nil {
		w.log.Warn("could not stop a container", "id", rec.id, "err", err)
		return
	}
	if status, err := w.m.cfg.Runtime.Status(ctx, rec.id); err == nil {
		rec.status = status
	}
}

// containerGracePeriod is how long a container killed for a failed probe
// gets: the probe's terminationGracePeriodSeconds, else the Pod's.
func containerGracePeriod(pod *api.Pod, c *api.Container) time.Duration {
	for _, p := range []*api.Probe{c.LivenessProbe, c.StartupProbe} {
		if p != nil && p.TerminationGracePeriodSeconds != nil {
			return time.Duration(*p.TerminationGracePeriodSeconds) * time.Second
		}
	}
	if s := pod.Spec.TerminationGracePeriodSeconds; s != nil {
		return time.Duration(*s) * time.Second
	}
	return api.DefaultTerminationGracePeriodSeconds * time.Second
}

func pullPolicy(c *api.Container) runtime.PullPolicy {
	switch c.ImagePullPolicy {
	case api.PullAlways:
		return runtime.PullAlways
	case api.PullNever:
		return runtime.PullNever
	default:
		return runtime.PullIfNotPresent
	}
}
