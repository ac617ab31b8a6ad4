package controllertest

import (
	"context"
	"sync"
	"testing"
	"time"
)

// DefaultTimeout is how long Eventually waits: generous, since a loaded CI
// machine can be slow, and a passing test does not wait for it.
const DefaultTimeout = 90 * time.Second

// pollInterval is how often Eventually looks again.
const pollInterval = 50 * time.Millisecond

// Eventually waits until check reports done, and fails the test when it has
// not after DefaultTimeout. check also returns a description of what it saw,
// which the failure shows: "waiting for 3 running pods: have 2".
func Eventually(t testing.TB, what string, check func() (done bool, saw string)) {
	t.Helper()
	deadline := time.Now().Add(DefaultTimeout)
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		done, saw := check()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last seen: %s", DefaultTimeout, what, saw)
		}
		<-ticker.C
	}
}

// Go runs fn in a goroutine for the rest of the test: fn's context is
// cancelled when the test ends, and the test's cleanup waits for fn to return.
func Go(t testing.TB, fn func(ctx context.Context)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { fn(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}
