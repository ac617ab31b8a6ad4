package podworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"kubelite/api"
	"kubelite/nodeagent/network"
	"kubelite/nodeagent/runtime"
)

// hostNetworkSandbox is the sandbox ID of hostNetwork Pods, which have no
// network of their own.
const hostNetworkSandbox = "host-network"

// podWorker keeps one Pod: see the package documentation for its life.
// Its run goroutine owns every field below the mutex; the Manager talks to
// it only through update, wakeUp and containerRefs.
type podWorker struct {
	m    *Manager
	uid  string
	log  *slog.Logger
	wake chan struct{} // buffered(1): a pending wake-up

	mu      sync.Mutex
	pod     *api.Pod // the latest version from the API; never mutated
	removed bool     // the Pod is gone from the API
	refs    map[string]containerRefs

	containers      map[string]*containerSet // by container name
	strays          []string                 // adopted containers that are neither current nor previous: to remove
	podNet          *network.PodNetwork      // nil until the sandbox is up, and after it is released
	podIP           string                   // kept after the network is released, for the status
	networkReleased bool
	crashBackOff    *BackOff                     // restarts, by container name
	imageBackOff    *BackOff                     // pulls, by image
	sandboxBackOff  *BackOff                     // network setup
	watched         map[string]*watchedContainer // running containers, by container ID
	helpers         sync.WaitGroup               // exit watchers and probers
	lastStatus      *api.PodStatus               // what this worker wrote last
	lastStatusRV    string                       // the resourceVersion that write returned
}

// containerSet is what the runtime has for one container of the Pod.
type containerSet struct {
	current, previous *containerRecord
	// waiting says why no container runs now; nil when nothing is wrong.
	waiting *api.ContainerStateWaiting
}

// watchedContainer is a running container whose exit (and probes) a
// goroutine of the worker watches.
type watchedContainer struct {
	cancel context.CancelFunc
	probes *probeResults // nil when the container has no probes
}

func newPodWorker(m *Manager, pod *api.Pod, adopted []runtime.Container, removed bool) *podWorker {
	backOff := func() *BackOff { return NewBackOff(m.cfg.BackOffInitial, m.cfg.BackOffMax) }
	w := &podWorker{
		m:              m,
		uid:            pod.UID,
		log:            m.log.With("pod", pod.Namespace+"/"+pod.Name, "uid", pod.UID),
		wake:           make(chan struct{}, 1),
		pod:            pod,
		removed:        removed,
		refs:           map[string]containerRefs{},
		containers:     map[string]*containerSet{},
		crashBackOff:   backOff(),
		imageBackOff:   backOff(),
		sandboxBackOff: backOff(),
		watched:        map[string]*watchedContainer{},
		podIP:          pod.Status.PodIP,
	}
	w.adopt(adopted)
	w.publishRefs()
	return w
}

// adopt takes over the containers a previous agent left for this Pod: per
// name, the latest attempt is current and the one before it previous;
// older ones, and ones that were created but never started (the agent
// stopped in between), are removed at the first sync.
func (w *podWorker) adopt(containers []runtime.Container) {
	byName := map[string][]runtime.Container{}
	for _, c := range containers {
		if c.Status.State == runtime.StateCreated {
			w.strays = append(w.strays, c.ID)
			continue
		}
		byName[c.Name] = append(byName[c.Name], c)
	}
	for name, cs := range byName {
		slices.SortFunc(cs, func(a, b runtime.Container) int { return b.Attempt - a.Attempt })
		set := &containerSet{current: recordOf(cs[0])}
		if len(cs) > 1 {
			set.previous = recordOf(cs[1])
		}
		for _, c := range cs[min(2, len(cs)):] {
			w.strays = append(w.strays, c.ID)
		}
		w.containers[name] = set
		w.log.Info("adopted container", "container", name, "id", cs[0].ID, "attempt", cs[0].Attempt, "state", cs[0].Status.State)
	}
}

func recordOf(c runtime.Container) *containerRecord {
	return &containerRecord{
		id:        c.ID,
		attempt:   c.Attempt,
		logPath:   c.LogPath,
		image:     c.Image,
		imageID:   c.Labels[labelImageID],
		sandboxID: c.Labels[labelSandboxID],
		status:    c.Status,
	}
}

// update hands the worker a newer version of its Pod (or says it is gone)
// and wakes it — unless only the Pod's status changed: that is the echo of
// the worker's own write, and a sync for it would be wasted, as the
// kubelet ignores status-only updates too.
func (w *podWorker) update(pod *api.Pod, removed bool) {
	w.mu.Lock()
	changed := removed || !w.removed && desiredStateChanged(w.pod, pod)
	w.pod = pod
	w.removed = w.removed || removed
	w.mu.Unlock()
	if changed {
		w.wakeUp()
	}
}

// desiredStateChanged reports whether two versions of a Pod differ in more
// than their status (and resourceVersion): in spec, labels, annotations or
// deletion.
func desiredStateChanged(old, next *api.Pod) bool {
	a, b := old.ObjectMeta, next.ObjectMeta
	a.ResourceVersion, b.ResourceVersion = "", ""
	return !sameJSON(a, b) || !sameJSON(old.Spec, next.Spec)
}

// wakeUp asks for a sync soon. It never blocks; wake-ups that come while
// one is pending are one.
func (w *podWorker) wakeUp() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *podWorker) latest() (*api.Pod, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod, w.removed
}

// run syncs whenever something wakes the worker, until the Pod is gone
// (it returns after its termination) or ctx ends (the agent is stopping;
// the containers keep running).
func (w *podWorker) run(ctx context.Context) {
	defer w.helpers.Wait()
	defer w.unwatchAll()
	timer := time.NewTimer(0) // the first sync at once
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
		next, finished := w.sync(ctx)
		if finished {
			return
		}
		timer.Reset(max(next, 0))
	}
}

// sync closes the gap between the Pod's spec and what runs, once, and says
// when to sync again.
func (w *podWorker) sync(ctx context.Context) (next time.Duration, finished bool) {
	pod, removed := w.latest()
	if removed || pod.DeletionTimestamp != nil {
		if err := w.terminate(ctx, pod, removed); err != nil {
			if ctx.Err() == nil {
				w.log.Warn("could not finish terminating the pod; will retry", "err", err)
			}
			return 2 * time.Second, false
		}
		return 0, true
	}

	w.removeStrays(ctx)
	w.observe(ctx)
	resync := w.m.cfg.ResyncPeriod
	if pod.Status.Phase == api.PodSucceeded || pod.Status.Phase == api.PodFailed {
		// A finished Pod never runs again, even if its containers are gone.
		w.releaseNetwork(ctx)
		return resync, false
	}
	if w.allExitedForGood(pod) || w.initFailedForGood(pod) {
		for _, set := range w.containers {
			set.waiting = nil // nothing waits any more
		}
		w.releaseNetwork(ctx)
		if err := w.updateStatus(ctx, pod); err != nil {
			return time.Second, false
		}
		return resync, false
	}

	next = resync
	if wait, err := w.ensureSandbox(ctx, pod); err != nil {
		next = wait
	} else if initialized, wait := w.syncInitContainers(ctx, pod); !initialized {
		next = wait
	} else {
		for i := range pod.Spec.Containers {
			next = min(next, w.syncContainer(ctx, pod, &pod.Spec.Containers[i]))
		}
	}
	w.publishRefs()
	if err := w.updateStatus(ctx, pod); err != nil {
		next = min(next, time.Second)
	}
	return next, false
}

// observe asks the runtime how the current containers are doing.
func (w *podWorker) observe(ctx context.Context) {
	for name, set := range w.containers {
		cur := set.current
		if cur == nil || cur.startError != "" || (exited(cur.status) && !cur.status.FinishedAt.IsZero()) {
			continue // nothing more will change
		}
		status, err := w.m.cfg.Runtime.Status(ctx, cur.id)
		switch {
		case errors.Is(err, runtime.ErrNotFound):
			w.log.Warn("container vanished from the runtime", "container", name, "id", cur.id)
			cur.status = runtime.ContainerStatus{State: runtime.StateUnknown, StartedAt: cur.status.StartedAt, FinishedAt: time.Now()}
		case err != nil:
			if ctx.Err() == nil {
				w.log.Warn("could not read a container's status", "container", name, "id", cur.id, "err", err)
			}
		default:
			cur.status = status
		}
	}
}

// allExitedForGood reports whether every container has run and exited,
// and the restart policy restarts none of them: the Pod has finished.
func (w *podWorker) allExitedForGood(pod *api.Pod) bool {
	if len(pod.Spec.Containers) == 0 {
		return false
	}
	for _, c := range pod.Spec.Containers {
		set := w.containers[c.Name]
		if set == nil || set.current == nil || !exited(set.current.status) ||
			shouldRestart(pod.Spec.RestartPolicy, set.current.status.ExitCode) {
			return false
		}
	}
	return true
}

// initFailedForGood reports whether an init container failed and the
// restart policy (Never) does not run it again: the Pod has failed.
func (w *podWorker) initFailedForGood(pod *api.Pod) bool {
	if pod.Spec.RestartPolicy != api.RestartNever {
		return false
	}
	for _, c := range pod.Spec.InitContainers {
		if set := w.containers[c.Name]; set != nil && set.current != nil &&
			exited(set.current.status) && set.current.status.ExitCode != 0 {
			return true
		}
	}
	return false
}

// ensureSandbox makes sure the Pod has its network and its files. On
// failure it returns how long to wait before trying again.
func (w *podWorker) ensureSandbox(ctx context.Context, pod *api.Pod) (time.Duration, error) {
	if pod.Spec.HostNetwork {
		w.podIP = w.m.cfg.NodeIP
		return 0, w.writePodFiles(pod)
	}
	if w.podNet == nil {
		now := time.Now()
		if wait, until := w.sandboxBackOff.InBackOffSinceUpdate("sandbox", now); wait {
			return time.Until(until), errors.New("backing off")
		}
		podNet, err := w.m.cfg.Network.SetupPod(ctx, network.Pod{
			UID: pod.UID, Namespace: pod.Namespace, Name: pod.Name, PortMappings: hostPorts(pod),
		})
		if err != nil {
			if ctx.Err() != nil {
				return time.Second, err
			}
			w.sandboxBackOff.Next("sandbox", now)
			w.log.Error("could not set up the pod network", "err", err)
			w.event(pod, api.EventWarning, "FailedCreatePodSandBox", fmt.Sprintf("Failed to create pod sandbox: %v", err))
			return w.sandboxBackOff.Delay("sandbox"), err
		}
		w.sandboxBackOff.Reset("sandbox")
		w.podNet, w.podIP, w.networkReleased = &podNet, podNet.IP.String(), false
	}
	return 0, w.writePodFiles(pod)
}

// sandboxID identifies the pod network the containers must belong to.
func (w *podWorker) sandboxID(pod *api.Pod) string {
	if pod.Spec.HostNetwork {
		return hostNetworkSandbox
	}
	return w.podNet.SandboxID
}

func (w *podWorker) netNSPath(pod *api.Pod) string {
	if pod.Spec.HostNetwork {
		return w.m.cfg.HostNetNSPath
	}
	return w.podNet.NetNSPath
}

// removeStrays removes the containers that are neither current nor
// previous.
func (w *podWorker) removeStrays(ctx context.Context) {
	kept := w.strays[:0]
	for _, id := range w.strays {
		if err := w.m.cfg.Runtime.Remove(ctx, id); err != nil {
			w.log.Warn("could not remove an old container", "id", id, "err", err)
			kept = append(kept, id)
		}
	}
	w.strays = kept
}

// releaseNetwork gives back the network of a Pod that has finished; its
// status keeps the IP it had.
func (w *podWorker) releaseNetwork(ctx context.Context) {
	if w.networkReleased {
		return
	}
	if err := w.m.cfg.Network.TeardownPod(ctx, w.uid); err != nil {
		w.log.Warn("could not release the network of a finished pod", "err", err)
		return
	}
	w.podNet, w.networkReleased = nil, true
}

// event records an Event about the Pod; stubs of Pods that are gone (no
// name) get none.
func (w *podWorker) event(pod *api.Pod, eventType, reason, message string) {
	if pod.Name == "" {
		return
	}
	w.m.cfg.Recorder.Event(pod, eventType, reason, message)
}

// podDescription is how the kubelet names a Pod in messages: name_namespace(uid).
func podDescription(pod *api.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// hostPorts are the Pod's hostPort mappings, for the portmap plugin.
func hostPorts(pod *api.Pod) []network.PortMapping {
	var mappings []network.PortMapping
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			protocol := p.Protocol
			if protocol == "" {
				protocol = api.ProtocolTCP
			}
			mappings = append(mappings, network.PortMapping{
				HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: lower(protocol), HostIP: p.HostIP,
			})
		}
	}
	return mappings
}
