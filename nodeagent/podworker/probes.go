package podworker

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"kubelite/api"
	"kubelite/nodeagent/probe"
	"kubelite/nodeagent/runtime"
)

// probeResults are the standing results of one container's probes,
// written by its probers and read by the pod worker.
type probeResults struct {
	hasStartup, hasReadiness bool

	mu      sync.Mutex
	results map[probe.Kind]probe.Result
}

func newProbeResults(c *api.Container) *probeResults {
	r := &probeResults{
		hasStartup:   c.StartupProbe != nil,
		hasReadiness: c.ReadinessProbe != nil,
		results:      map[probe.Kind]probe.Result{},
	}
	for kind, p := range containerProbes(c) {
		if p != nil {
			r.results[kind] = probe.InitialResult(kind)
		}
	}
	return r
}

func containerProbes(c *api.Container) map[probe.Kind]*api.Probe {
	return map[probe.Kind]*api.Probe{probe.Startup: c.StartupProbe, probe.Liveness: c.LivenessProbe, probe.Readiness: c.ReadinessProbe}
}

func hasProbes(c *api.Container) bool {
	return c.StartupProbe != nil || c.LivenessProbe != nil || c.ReadinessProbe != nil
}

func (r *probeResults) set(kind probe.Kind, result probe.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results[kind] = result
}

func (r *probeResults) get(kind probe.Kind) probe.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.results[kind]
}

// started: the startup probe has passed, or there is none. A nil
// *probeResults is a container without probes.
func (r *probeResults) started() bool {
	return r == nil || !r.hasStartup || r.get(probe.Startup) == probe.Success
}

// ready: the readiness probe passes, or there is none.
func (r *probeResults) ready() bool {
	return r == nil || !r.hasReadiness || r.get(probe.Readiness) == probe.Success
}

// failed names the probe whose failure means the container must be
// killed: liveness, or startup.
func (r *probeResults) failed() (probe.Kind, bool) {
	if r == nil {
		return "", false
	}
	for _, kind := range []probe.Kind{probe.Startup, probe.Liveness} {
		if r.get(kind) == probe.Failure {
			return kind, true
		}
	}
	return "", false
}

// watch starts watching a running container, unless it is watched
// already: a goroutine waits for its exit and wakes the worker, and
// another runs its probes.
func (w *podWorker) watch(ctx context.Context, pod *api.Pod, c *api.Container, rec *containerRecord) {
	if w.watched[rec.id] != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	watched := &watchedContainer{cancel: cancel}
	w.watched[rec.id] = watched
	w.helpers.Go(func() {
		if _, err := w.m.cfg.Runtime.Wait(ctx, rec.id); ctx.Err() == nil {
			if err != nil {
				w.log.Warn("lost the wait on a container", "id", rec.id, "err", err)
			}
			w.wakeUp()
		}
	})
	if hasProbes(c) {
		watched.probes = newProbeResults(c)
		// Read here: the probers must not share the worker's fields.
		podIP, startedAt := w.podIP, rec.status.StartedAt
		w.helpers.Go(func() { w.runProbes(ctx, pod, c, rec.id, startedAt, podIP, watched.probes) })
	}
}

// unwatch stops watching a container (it is being stopped or replaced).
func (w *podWorker) unwatch(id string) {
	if watched := w.watched[id]; watched != nil {
		watched.cancel()
		delete(w.watched, id)
	}
}

func (w *podWorker) unwatchAll() {
	for id := range w.watched {
		w.unwatch(id)
	}
}

// probeFailed reports whether a running container's liveness or startup
// probe has failed.
func (w *podWorker) probeFailed(id string) (probe.Kind, bool) {
	if watched := w.watched[id]; watched != nil {
		return watched.probes.failed()
	}
	return "", false
}

// runProbes runs a container's probes as the kubelet does: the startup
// probe first; once it passes, the liveness and readiness probes side by
// side. Every result change wakes the worker; every failed check is an
// Unhealthy event.
func (w *podWorker) runProbes(ctx context.Context, pod *api.Pod, c *api.Container, id string, startedAt time.Time, podIP string, results *probeResults) {
	target := probe.Target{
		PodIP: podIP,
		Ports: c.Ports,
		Dial:  w.m.cfg.Dial,
		Exec: func(ctx context.Context, cmd []string) (int, []byte, error) {
			var out lockedBuffer
			code, err := w.m.cfg.Runtime.Exec(ctx, id, runtime.ExecConfig{Cmd: cmd, Stdout: &out, Stderr: &out})
			return code, out.Bytes(), err
		},
	}
	workerFor := func(kind probe.Kind, spec *api.Probe) *probe.Worker {
		checker, err := probe.NewChecker(spec.ProbeHandler, target)
		if err != nil {
			// The probe cannot run: it fails, as the kubelet's would.
			message := err.Error()
			checker = probe.CheckerFunc(func(context.Context) (probe.Result, string) { return probe.Failure, message })
		}
		return &probe.Worker{
			Kind:      kind,
			Timing:    probe.TimingOf(kind, spec),
			Checker:   checker,
			StartedAt: startedAt,
			Report: func(u probe.Update) {
				if u.Outcome == probe.Failure {
					w.event(pod, api.EventWarning, "Unhealthy", fmt.Sprintf("%s probe failed: %s", u.Kind, u.Message))
				}
				if u.Changed {
					results.set(u.Kind, u.Result)
					w.log.Info("probe result changed", "container", c.Name, "probe", lower(u.Kind), "result", u.Result)
					w.wakeUp()
				}
			},
		}
	}
	if c.StartupProbe != nil {
		workerFor(probe.Startup, c.StartupProbe).Run(ctx)
		if ctx.Err() != nil {
			return
		}
	}
	var probers sync.WaitGroup
	for _, kind := range []probe.Kind{probe.Liveness, probe.Readiness} {
		if spec := containerProbes(c)[kind]; spec != nil {
			probers.Go(func() { workerFor(kind, spec).Run(ctx) })
		}
	}
	probers.Wait()
}

// lockedBuffer collects an exec's stdout and stderr, which are copied by
// two goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func lower[S ~string](s S) string { return strings.ToLower(string(s)) }
