package podworker

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"kubelite/api"
	"kubelite/nodeagent/runtime"
)

type containerRefs struct{ current, previous ContainerRef }

// updateStatus computes the Pod's status and writes it when it changed.
func (w *podWorker) updateStatus(ctx context.Context, pod *api.Pod) error {
	status := computeStatus(statusInput{
		pod:            pod,
		hostIP:         w.m.cfg.NodeIP,
		podIP:          w.podIP,
		initContainers: w.views(pod.Spec.InitContainers),
		containers:     w.views(pod.Spec.Containers),
		now:            time.Now(),
	})
	if sameStatus(status, pod.Status) {
		return nil
	}
	// The cache may not show our last write yet: do not write it twice.
	if w.lastStatus != nil && sameStatus(status, *w.lastStatus) && !newerVersion(pod.ResourceVersion, w.lastStatusRV) {
		return nil
	}
	next := *pod // a shallow copy: only Status is replaced, nothing shared is changed
	next.Status = status
	stored, err := w.m.cfg.API.UpdateStatus(ctx, &next)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("could not update the pod's status", "err", err)
		}
		return err
	}
	if status.Phase != pod.Status.Phase {
		w.log.Info("pod phase", "from", pod.Status.Phase, "to", status.Phase, "ip", status.PodIP)
	}
	w.lastStatus, w.lastStatusRV = &status, stored.ResourceVersion
	return nil
}

// views gathers what the status of each container is computed from.
func (w *podWorker) views(containers []api.Container) []containerView {
	views := make([]containerView, 0, len(containers))
	for i := range containers {
		c := &containers[i]
		v := containerView{spec: c}
		if set := w.containers[c.Name]; set != nil {
			v.current, v.previous, v.waiting = set.current, set.previous, set.waiting
		}
		if v.current != nil && v.current.status.State == runtime.StateRunning {
			var probes *probeResults
			if watched := w.watched[v.current.id]; watched != nil {
				probes = watched.probes
			}
			v.started = probes.started()
			v.ready = v.started && probes.ready()
		}
		views = append(views, v)
	}
	return views
}

func sameStatus(a, b api.PodStatus) bool { return sameJSON(a, b) }

// sameJSON compares two API values as the API server would store them.
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// newerVersion reports whether resource version a is newer than b. The
// API server's versions are etcd revisions, so they compare as numbers;
// anything else counts as newer, so that the status is written again.
func newerVersion(a, b string) bool {
	na, errA := strconv.ParseUint(a, 10, 64)
	nb, errB := strconv.ParseUint(b, 10, 64)
	if errA != nil || errB != nil {
		return a != b
	}
	return na > nb
}

// publishRefs makes the current containers visible to ContainerFor.
func (w *podWorker) publishRefs() {
	refs := make(map[string]containerRefs, len(w.containers))
	for name, set := range w.containers {
		var r containerRefs
		if c := set.current; c != nil {
			r.current = ContainerRef{ID: c.id, LogPath: c.logPath, Attempt: c.attempt}
		}
		if p := set.previous; p != nil {
			r.previous = ContainerRef{ID: p.id, LogPath: p.logPath, Attempt: p.attempt}
		}
		refs[name] = r
	}
	w.mu.Lock()
	w.refs = refs
	w.mu.Unlock()
}

func (w *podWorker) containerRefs(name string) (containerRefs, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.refs[name]
	return r, ok && r.current.ID != ""
}
