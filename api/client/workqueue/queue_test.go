package workqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// getWithin calls Get, failing the test if it blocks for long.
func getWithin(t *testing.T, q *Queue) (string, bool) {
	t.Helper()
	type result struct {
		key      string
		shutdown bool
	}
	got := make(chan result, 1)
	go func() {
		key, shutdown := q.Get()
		got <- result{key, shutdown}
	}()
	select {
	case r := <-got:
		return r.key, r.shutdown
	case <-time.After(20 * time.Second):
		t.Fatal("Get blocked")
	}
	panic("unreachable")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAddDeduplicates(t *testing.T) {
	q := New()
	defer q.ShutDown()
	q.Add("default/a")
	q.Add("default/b")
	q.Add("default/a")
	if q.Len() != 2 {
		t.Fatalf("Len = %d, want 2", q.Len())
	}
	for _, want := range []string{"default/a", "default/b"} {
		if key, _ := getWithin(t, q); key != want {
			t.Errorf("Get = %q, want %q (first-in, first-out)", key, want)
		}
	}
}

func TestKeyBeingProcessedIsRequeuedAtDone(t *testing.T) {
	q := New()
	defer q.ShutDown()
	q.Add("a")
	key, _ := getWithin(t, q)

	q.Add("a") // changed again while a worker holds it
	q.Add("a")
	if q.Len() != 0 {
		t.Fatalf("Len = %d while a is being processed; a must not reach a second worker", q.Len())
	}
	q.Done(key)
	if q.Len() != 1 {
		t.Fatalf("Len = %d after Done, want a queued once again", q.Len())
	}
	if key, _ := getWithin(t, q); key != "a" {
		t.Errorf("Get = %q", key)
	}
	q.Done("a")
	if q.Len() != 0 {
		t.Errorf("Len = %d after the second Done, want 0", q.Len())
	}
}

// TestNoConcurrentProcessingOfOneKey hammers a few keys from many adders
// and workers and checks that no key is ever held by two workers at once,
// and that the last add of each key is processed.
func TestNoConcurrentProcessingOfOneKey(t *testing.T) {
	q := New()
	keys := []string{"a", "b", "c"}
	var holders [3]atomic.Int32
	var violations atomic.Int32
	var processedAfterLastAdd [3]atomic.Bool
	var addsDone atomic.Bool

	var workers sync.WaitGroup
	for range 8 {
		workers.Go(func() {
			for {
				key, shutdown := q.Get()
				if shutdown {
					return
				}
				i := int(key[0] - 'a')
				if holders[i].Add(1) > 1 {
					violations.Add(1)
				}
				if addsDone.Load() {
					processedAfterLastAdd[i].Store(true)
				}
				time.Sleep(50 * time.Microsecond)
				holders[i].Add(-1)
				q.Done(key)
			}
		})
	}
	var adders sync.WaitGroup
	for range 4 {
		adders.Go(func() {
			for i := range 2000 {
				q.Add(keys[i%len(keys)])
			}
		})
	}
	adders.Wait()
	addsDone.Store(true)
	for _, k := range keys {
		q.Add(k) // a final change of each key, which must be processed
	}
	waitFor(t, "the final adds to be processed", func() bool {
		return processedAfterLastAdd[0].Load() && processedAfterLastAdd[1].Load() && processedAfterLastAdd[2].Load()
	})
	q.ShutDown()
	workers.Wait()
	if n := violations.Load(); n > 0 {
		t.Errorf("a key was processed by two workers at once %d times", n)
	}
}

func TestExponentialBackoff(t *testing.T) {
	b := NewExponentialBackoff(DefaultBaseDelay, DefaultMaxDelay)
	want := []time.Duration{5, 10, 20, 40, 80}
	for i, w := range want {
		if got := b.When("a"); got != w*time.Millisecond {
			t.Errorf("failure %d: delay %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if b.NumRequeues("a") != 5 || b.NumRequeues("b") != 0 {
		t.Errorf("NumRequeues = %d, %d", b.NumRequeues("a"), b.NumRequeues("b"))
	}
	if got := b.When("b"); got != 5*time.Millisecond {
		t.Errorf("another key starts at %v", got)
	}
	for range 100 { // far past the cap, and past where 5ms<<n would overflow
		b.When("a")
	}
	if got := b.When("a"); got != DefaultMaxDelay {
		t.Errorf("delay after many failures = %v, want the cap %v", got, DefaultMaxDelay)
	}
	b.Forget("a")
	if got := b.When("a"); got != 5*time.Millisecond || b.NumRequeues("a") != 1 {
		t.Errorf("after Forget: delay %v, requeues %d", got, b.NumRequeues("a"))
	}
}

func TestAddRateLimited(t *testing.T) {
	q := New(WithBackoff(time.Millisecond, 50*time.Millisecond))
	defer q.ShutDown()
	for attempt := 1; attempt <= 4; attempt++ {
		q.AddRateLimited("a")
		if key, _ := getWithin(t, q); key != "a" {
			t.Fatalf("Get = %q", key)
		}
		q.Done("a")
		if q.NumRequeues("a") != attempt {
			t.Errorf("NumRequeues = %d, want %d", q.NumRequeues("a"), attempt)
		}
	}
	q.Forget("a")
	if q.NumRequeues("a") != 0 {
		t.Errorf("NumRequeues after Forget = %d", q.NumRequeues("a"))
	}
}

func TestAddAfter(t *testing.T) {
	q := New()
	defer q.ShutDown()
	q.AddAfter("later", time.Hour)
	q.AddAfter("soon", 10*time.Millisecond)
	q.AddAfter("now", 0)
	if q.Len() != 1 {
		t.Fatalf("Len = %d right after the adds, want only the undelayed key", q.Len())
	}
	if key, _ := getWithin(t, q); key != "now" {
		t.Errorf("Get = %q, want now", key)
	}
	if key, _ := getWithin(t, q); key != "soon" {
		t.Errorf("Get = %q, want soon", key)
	}

	// A second AddAfter with an earlier time wins; a later one does not delay it.
	q.AddAfter("later", 5*time.Millisecond)
	q.AddAfter("later", time.Hour)
	if key, _ := getWithin(t, q); key != "later" {
		t.Errorf("Get = %q, want later", key)
	}
}

func TestShutDown(t *testing.T) {
	q := New()
	q.Add("left-over")
	q.AddAfter("never", time.Hour) // dropped by ShutDown

	blocked := make(chan bool)
	go func() {
		_, _ = q.Get() // takes left-over
		_, shutdown := q.Get()
		blocked <- shutdown
	}()
	waitFor(t, "left-over to be taken", func() bool { return q.Len() == 0 })
	q.ShutDown()
	select {
	case shutdown := <-blocked:
		if !shutdown {
			t.Error("a blocked Get returned a key after ShutDown")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a blocked Get did not return after ShutDown")
	}
	q.Add("ignored")
	q.AddRateLimited("ignored")
	if key, shutdown := getWithin(t, q); !shutdown || key != "" {
		t.Errorf("Get after ShutDown = %q, %v", key, shutdown)
	}
	if !q.ShuttingDown() {
		t.Error("ShuttingDown is false")
	}
}

func TestShutDownHandsOutQueuedKeysFirst(t *testing.T) {
	q := New()
	q.Add("a")
	q.Add("b")
	q.ShutDown()
	for _, want := range []string{"a", "b"} {
		if key, shutdown := getWithin(t, q); key != want || shutdown {
			t.Errorf("Get = %q, %v; want %q", key, shutdown, want)
		}
	}
	if _, shutdown := getWithin(t, q); !shutdown {
		t.Error("Get after draining did not report shutdown")
	}
}

func TestRun(t *testing.T) {
	q := New(WithBackoff(time.Millisecond, 10*time.Millisecond), WithLogger(slog.New(slog.DiscardHandler)))
	var mu sync.Mutex
	attempts := map[string]int{}
	succeeded := make(chan string, 10)
	process := func(ctx context.Context, key string) error {
		mu.Lock()
		defer mu.Unlock()
		attempts[key]++
		if key == "flaky" && attempts[key] < 3 {
			return errors.New("not yet")
		}
		succeeded <- key
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Run(ctx, 2, process)
	}()
	q.Add("steady")
	q.Add("flaky")
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case key := <-succeeded:
			got[key] = true
		case <-time.After(20 * time.Second):
			t.Fatalf("only %v succeeded", got)
		}
	}
	mu.Lock()
	if attempts["flaky"] != 3 || attempts["steady"] != 1 {
		t.Errorf("attempts = %v", attempts)
	}
	mu.Unlock()
	if q.NumRequeues("flaky") != 0 {
		t.Errorf("NumRequeues(flaky) = %d after success, want it forgotten", q.NumRequeues("flaky"))
	}
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if !q.ShuttingDown() {
		t.Error("Run left the queue running")
	}
}

func ExampleQueue() {
	q := New()
	q.Add("default/web")
	q.Add("default/web") // deduplicated
	key, _ := q.Get()
	fmt.Println(key, q.Len())
	q.Done(key)
	q.ShutDown()
	// Output: default/web 0
}
