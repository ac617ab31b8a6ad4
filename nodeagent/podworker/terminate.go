package podworker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"kubelite/api"
)

// terminate stops everything of the Pod, removes it, and — when the Pod is
// still in the API — confirms the deletion there. It may run again after
// a failure: every step is idempotent.
func (w *podWorker) terminate(ctx context.Context, pod *api.Pod, removed bool) error {
	grace := podGracePeriod(pod, removed, w.m.cfg.MinimumGracePeriod)
	w.unwatchAll()

	var wg sync.WaitGroup
	errs := make(chan error, len(w.containers))
	for name, set := range w.containers {
		cur := set.current
		if cur == nil || exited(cur.status) {
			continue
		}
		w.event(pod, api.EventNormal, "Killing", "Stopping container "+name)
		wg.Go(func() {
			if err := w.m.cfg.Runtime.Stop(ctx, cur.id, grace); err != nil {
				errs <- fmt.Errorf("stop container %s: %w", name, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := errors.Join(collect(errs)...); err != nil {
		return err
	}

	if err := w.m.cfg.Network.TeardownPod(ctx, w.uid); err != nil {
		return err
	}
	w.podNet = nil
	for _, set := range w.containers {
		for _, rec := range []*containerRecord{set.current, set.previous} {
			if rec == nil {
				continue
			}
			if err := w.m.cfg.Runtime.Remove(ctx, rec.id); err != nil {
				return err
			}
		}
	}
	w.containers = map[string]*containerSet{}
	w.removeStrays(ctx)
	if len(w.strays) > 0 {
		return fmt.Errorf("%d containers could not be removed", len(w.strays))
	}
	w.publishRefs()
	if err := os.RemoveAll(w.m.podDir(w.uid)); err != nil {
		return err
	}
	if pod.Name != "" {
		if err := os.RemoveAll(w.m.podLogDir(pod)); err != nil {
			return err
		}
	}
	if !removed {
		if err := w.m.cfg.API.ConfirmDeletion(ctx, pod); err != nil {
			return err
		}
	}
	w.log.Info("pod terminated", "grace", grace, "confirmed", !removed)
	return nil
}

func collect(errs <-chan error) []error {
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return out
}

// podGracePeriod is how long the Pod's containers get to stop: the grace
// period of its deletion, else its spec's; a Pod already gone from the API
// (force-deleted, or deleted while the agent was away) gets the minimum.
func podGracePeriod(pod *api.Pod, removed bool, minimum time.Duration) time.Duration {
	seconds := int64(api.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		seconds = *pod.Spec.TerminationGracePeriodSeconds
	}
	if pod.DeletionGracePeriodSeconds != nil {
		seconds = *pod.DeletionGracePeriodSeconds
	}
	if removed {
		seconds = 0
	}
	return max(time.Duration(seconds)*time.Second, minimum)
}
