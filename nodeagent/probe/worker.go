package probe

import (
	"context"
	"time"
)

// Update is what a Worker reports after a check.
type Update struct {
	Kind    Kind
	Result  Result // the probe's standing result after this check
	Changed bool   // whether this check changed it
	// Outcome and Message describe this check alone; the agent records an
	// Unhealthy event for every failed check, as the kubelet does.
	Outcome Result
	Message string
}

// Worker runs one probe of one running container. Its owner runs it in a
// goroutine of its own and stops it by cancelling the context given to
// Run, when the container stops or is replaced.
type Worker struct {
	Kind    Kind
	Timing  Timing
	Checker Checker
	// StartedAt is when the container started; the initial delay counts
	// from it, so a worker started late (after an agent restart) does not
	// wait it out again.
	StartedAt time.Time
	// Report receives every check's update. It must not block for long.
	Report func(Update)
}

// Run checks on the probe's schedule until ctx ends. A startup probe stops
// once it has succeeded: from then on the container counts as started and
// its other probes take over.
func (w *Worker) Run(ctx context.Context) {
	tracker := NewTracker(w.Kind, w.Timing)
	delay := time.Until(w.StartedAt.Add(w.Timing.InitialDelay))
	timer := time.NewTimer(max(delay, 0))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		outcome, message := w.checkOnce(ctx)
		if ctx.Err() != nil {
			return // stopped mid-check: the outcome means nothing
		}
		changed := tracker.Observe(outcome)
		w.Report(Update{Kind: w.Kind, Result: tracker.Result(), Changed: changed, Outcome: outcome, Message: message})
		if w.Kind == Startup && tracker.Result() == Success {
			return
		}
		timer.Reset(w.Timing.Period)
	}
}

func (w *Worker) checkOnce(ctx context.Context) (Result, string) {
	ctx, cancel := context.WithTimeout(ctx, w.Timing.Timeout)
	defer cancel()
	return w.Checker.Check(ctx)
}
