package storage_test

import (
	"context"
	"testing"
	"time"

	"kubelite/api"
)

func TestRunCompactorDiscardsOldHistory(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := testContext(t)
	created := mustCreate(t, ctx, env.pods, newPod("default", "web", nil))
	for _, step := range []string{"1", "2", "3"} {
		mustUpdate(t, ctx, env.pods, "web", setLabel("step", step))
	}

	compactorCtx, stopCompactor := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		env.store.RunCompactor(compactorCtx, 10*time.Millisecond, 1)
	}()

	// Wait (bounded by ctx) until a watch from the creation is refused.
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for {
		attemptCtx, endAttempt := context.WithCancel(ctx)
		_, err := env.pods.Watch(attemptCtx, "default", revision(t, created), nil)
		endAttempt()
		if api.IsGone(err) {
			break
		}
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("history from the creation was never compacted")
		case <-poll.C:
		}
	}

	// keep=1: the newest revision is still a valid starting point.
	current, err := env.store.CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.pods.Watch(ctx, "default", current-1, nil); err != nil {
		t.Errorf("watch from current-1 after compaction keeping 1: %v", err)
	}
	stopCompactor()
	<-stopped
}
