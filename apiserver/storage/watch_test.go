package storage_test

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"testing"

	"kubelite/api"
	"kubelite/apiserver/storage"
)

func TestWatchFromListSeesEveryWriteOnceInOrder(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := testContext(t)
	for i := range 5 {
		mustCreate(t, ctx, env.pods, newPod("default", fmt.Sprintf("existing-%d", i), nil))
	}
	items, listRev, err := env.pods.List(ctx, "default", nil)
	if err != nil || len(items) != 5 {
		t.Fatalf("list: %d items, %v", len(items), err)
	}
	events, err := env.pods.Watch(ctx, "default", listRev, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Writers create, update and delete their own pods, and note the
	// resourceVersion etcd gave each write.
	const writers, podsEach, updatesEach = 4, 5, 3
	var (
		mu     sync.Mutex
		writes = map[string]api.EventType{} // resourceVersion → expected event
	)
	record := func(obj api.Object, err error, want api.EventType) {
		if err != nil {
			t.Errorf("write: %v", err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		writes[obj.GetObjectMeta().ResourceVersion] = want
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for p := range podsEach {
				name := fmt.Sprintf("w%d-p%d", w, p)
				created, err := env.pods.Create(ctx, newPod("default", name, nil))
				record(created, err, api.Added)
				for u := range updatesEach {
					updated, err := env.pods.Update(ctx, "default", name, setLabel("step", strconv.Itoa(u)))
					record(updated, err, api.Modified)
				}
				deleted, err := env.pods.Delete(ctx, "default", name, "")
				record(deleted, err, api.Deleted)
			}
		})
	}
	// Writes elsewhere must not show up.
	mustCreate(t, ctx, env.pods, newPod("kube-system", "elsewhere", nil))
	// And the pods that existed before the list change too.
	existing, err := env.pods.Delete(ctx, "default", "existing-0", "")
	record(existing, err, api.Deleted)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	lastRev := listRev
	seen := map[string]bool{}
	for range writes {
		event := nextEvent(t, ctx, events)
		s := summarize(event)
		rev := revision(t, event.Object)
		if rev <= lastRev {
			t.Fatalf("event %+v at revision %d after revision %d: out of order or repeated", s, rev, lastRev)
		}
		lastRev = rev
		want, ok := writes[s.RV]
		if !ok {
			t.Fatalf("event %+v matches no write", s)
		}
		if s.Type != want {
			t.Errorf("event %+v, want type %s", s, want)
		}
		seen[s.RV] = true
	}
	if len(seen) != len(writes) {
		t.Errorf("saw %d distinct writes, want %d", len(seen), len(writes))
	}
	// Every write was seen once, so anything still queued is one too many.
	select {
	case event := <-events:
		t.Errorf("unexpected extra event %+v", summarize(event))
	default:
	}
}

func TestWatchPredicateTransitions(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := testContext(t)
	isWeb := func(obj api.Object) bool { return obj.GetObjectMeta().Labels["app"] == "web" }
	events, err := env.pods.Watch(ctx, "default", 0, isWeb)
	if err != nil {
		t.Fatal(err)
	}

	mustCreate(t, ctx, env.pods, newPod("default", "p", map[string]string{"app": "db"})) // not seen
	mustUpdate(t, ctx, env.pods, "p", setLabel("app", "web"))                            // starts to match
	mustUpdate(t, ctx, env.pods, "p", setLabel("tier", "frontend"))                      // still matches
	mustUpdate(t, ctx, env.pods, "p", setLabel("app", "cache"))                          // stops matching
	mustUpdate(t, ctx, env.pods, "p", setLabel("tier", "backend"))                       // not seen
	mustDelete(t, ctx, env.pods, "p")                                                    // not seen
	mustCreate(t, ctx, env.pods, newPod("default", "q", map[string]string{"app": "web"}))
	mustDelete(t, ctx, env.pods, "q")

	want := []struct {
		Type   api.EventType
		Key    string
		Labels map[string]string
	}{
		{api.Added, "default/p", map[string]string{"app": "web"}},
		{api.Modified, "default/p", map[string]string{"app": "web", "tier": "frontend"}},
		// DELETED carries the new state: the object that left the set.
		{api.Deleted, "default/p", map[string]string{"app": "cache", "tier": "frontend"}},
		{api.Added, "default/q", map[string]string{"app": "web"}},
		{api.Deleted, "default/q", map[string]string{"app": "web"}},
	}
	for i, w := range want {
		got := summarize(nextEvent(t, ctx, events))
		if got.Type != w.Type || got.Key != w.Key || !reflect.DeepEqual(got.Labels, w.Labels) {
			t.Errorf("event %d = %s %s %v, want %s %s %v", i, got.Type, got.Key, got.Labels, w.Type, w.Key, w.Labels)
		}
	}
}

func TestWatchDeleteCarriesDeletionRevision(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := testContext(t)
	created := mustCreate(t, ctx, env.pods, newPod("default", "web", map[string]string{"run": "httpd"}))
	events, err := env.pods.Watch(ctx, "", revision(t, created), nil)
	if err != nil {
		t.Fatal(err)
	}
	deleted := mustDelete(t, ctx, env.pods, "web")

	got := nextEvent(t, ctx, events)
	if got.Type != api.Deleted || got.Object.GetObjectMeta().ResourceVersion != deleted.GetObjectMeta().ResourceVersion {
		t.Errorf("got %+v, want DELETED at %s", summarize(got), deleted.GetObjectMeta().ResourceVersion)
	}
	if got.Object.GetObjectMeta().Labels["run"] != "httpd" || got.Object.GetTypeMeta().Kind != "Pod" {
		t.Errorf("deleted object %+v lacks its last state", got.Object)
	}
}

func TestWatchFromNowSkipsThePast(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := testContext(t)
	mustCreate(t, ctx, env.pods, newPod("default", "before", nil))
	events, err := env.pods.Watch(ctx, "", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, ctx, env.pods, newPod("default", "after", nil))
	if got := summarize(nextEvent(t, ctx, events)); got.Key != "default/after" || got.Type != api.Added {
		t.Errorf("first event %+v, want ADDED default/after", got)
	}
}

func TestWatchGoneAfterCompact(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := testContext(t)
	created := mustCreate(t, ctx, env.pods, newPod("default", "web", nil))
	for i := range 3 {
		mustUpdate(t, ctx, env.pods, "web", setLabel("step", strconv.Itoa(i)))
	}
	current, err := env.store.CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.store.Compact(ctx, current); err != nil {
		t.Fatalf("compact: %v", err)
	}
	if err := env.store.Compact(ctx, current-1); err != nil {
		t.Errorf("compacting below an earlier compaction: %v, want no error", err)
	}

	_, err = env.pods.Watch(ctx, "default", revision(t, created), nil)
	status := requireStatus(t, err, 410, api.ReasonGone)
	if want := fmt.Sprintf("too old resource version: %s (%d)", created.ResourceVersion, current); status.Message != want {
		t.Errorf("message %q, want %q", status.Message, want)
	}

	// The compacted revision itself is still a valid starting point.
	events, err := env.pods.Watch(ctx, "default", current, nil)
	if err != nil {
		t.Fatalf("watch from the compacted revision: %v", err)
	}
	mustUpdate(t, ctx, env.pods, "web", setLabel("step", "after"))
	if got := summarize(nextEvent(t, ctx, events)); got.Labels["step"] != "after" {
		t.Errorf("event %+v, want the update after compaction", got)
	}
}

func TestWatchClosesWhenContextEnds(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := testContext(t)
	watchCtx, cancel := context.WithCancel(ctx)
	events, err := env.pods.Watch(watchCtx, "", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, ctx, env.pods, newPod("default", "web", nil))
	nextEvent(t, ctx, events)
	cancel()

	for {
		select {
		case event, open := <-events:
			if !open {
				return
			}
			if event.Err != nil {
				t.Errorf("cancelling the watch produced an error event: %v", event.Err)
			}
		case <-ctx.Done():
			t.Fatal("watch channel not closed after its context ended")
		}
	}
}

func TestWatchRejectsNegativeRevision(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, err := env.pods.Watch(testContext(t), "", -1, nil)
	requireStatus(t, err, 400, api.ReasonBadRequest)
}

func mustUpdate(t testing.TB, ctx context.Context, pods *storage.ResourceStore, name string, tryUpdate func(api.Object) (api.Object, error)) api.Object {
	t.Helper()
	updated, err := pods.Update(ctx, "default", name, tryUpdate)
	if err != nil {
		t.Fatalf("update default/%s: %v", name, err)
	}
	return updated
}

func mustDelete(t testing.TB, ctx context.Context, pods *storage.ResourceStore, name string) api.Object {
	t.Helper()
	deleted, err := pods.Delete(ctx, "default", name, "")
	if err != nil {
		t.Fatalf("delete default/%s: %v", name, err)
	}
	return deleted
}
