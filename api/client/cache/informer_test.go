package cache

import (
	"context"
	"encoding/pem"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/internal/fakeapi"
)

const testToken = "informer-test-token"

// recorder is a Handler that writes down what it is told, one line per call:
// "add default/a@3", "update default/a@3->5", "delete default/a@5".
type recorder struct {
	mu       sync.Mutex
	lines    []string
	inFlight atomic.Int32
	overlaps atomic.Int32 // calls that ran while another was running
}

func (r *recorder) record(line string) {
	if r.inFlight.Add(1) > 1 {
		r.overlaps.Add(1)
	}
	defer r.inFlight.Add(-1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, line)
}

func (r *recorder) handler() Handler[*api.Pod] {
	return Handler[*api.Pod]{
		OnAdd: func(p *api.Pod) { r.record("add " + Key(p) + "@" + p.ResourceVersion) },
		OnUpdate: func(old, cur *api.Pod) {
			r.record("update " + Key(cur) + "@" + old.ResourceVersion + "->" + cur.ResourceVersion)
		},
		OnDelete: func(p *api.Pod) { r.record("delete " + Key(p) + "@" + p.ResourceVersion) },
	}
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lines)
}

// waitLines waits until at least n lines are recorded and returns them.
func (r *recorder) waitLines(t *testing.T, n int) []string {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d handler calls", n), func() bool { return len(r.snapshot()) >= n })
	return r.snapshot()
}

// waitFor polls cond until it holds, failing the test after a generous wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testLogger logs into the test's output, shown only when it fails.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newPod(ns, name string, labels map[string]string) *api.Pod {
	return &api.Pod{
		TypeMeta:   api.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       api.PodSpec{Containers: []api.Container{{Name: "web", Image: "httpd"}}},
	}
}

// withRV is pod as the fake stored it at resourceVersion rv, for updates.
func withRV(pod *api.Pod, rv string) *api.Pod {
	pod.ResourceVersion = rv
	return pod
}

type harness struct {
	fake     *fakeapi.Server
	informer *Informer[api.Pod, *api.Pod]
	recorder *recorder
	cancel   context.CancelFunc
	done     chan struct{}
}

// start runs an all-namespaces pod informer against a fresh fake server;
// seed is stored before the informer starts.
func start(t *testing.T, resync time.Duration, prepare func(*fakeapi.Server), seed ...*api.Pod) *harness {
	t.Helper()
	fake := fakeapi.Start(testToken)
	t.Cleanup(fake.Close)
	for _, pod := range seed {
		fake.Put(pod)
	}
	if prepare != nil {
		prepare(fake)
	}
	c, err := client.New(&client.Config{
		Server: fake.URL,
		Token:  testToken,
		CAData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fake.Certificate().Raw}),
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		fake:     fake,
		informer: NewInformer(client.For[api.Pod](c, ""), client.ListOptions{}, resync, WithBackoff(time.Millisecond, 20*time.Millisecond), WithLogger(testLogger(t))),
		recorder: &recorder{},
		done:     make(chan struct{}),
	}
	h.informer.AddHandler(h.recorder.handler())
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		defer close(h.done)
		h.informer.Run(ctx)
	}()
	t.Cleanup(h.stop)
	t.Cleanup(func() {
		if n := h.recorder.overlaps.Load(); n > 0 {
			t.Errorf("%d handler calls overlapped another; handlers must run one at a time", n)
		}
	})
	return h
}

// stop cancels Run and waits for it to return.
func (h *harness) stop() {
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(20 * time.Second):
		panic("Informer.Run did not return after its context ended")
	}
}

func (h *harness) waitSynced(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if !h.informer.WaitForSync(ctx) {
		t.Fatal("informer did not sync")
	}
}

func (h *harness) waitWatching(t *testing.T) {
	t.Helper()
	waitFor(t, "an open watch", func() bool { return h.fake.OpenWatches() == 1 })
}

// requests counts the fake's list and watch requests.
func (h *harness) requests() (lists int, watchRVs []string) {
	for _, r := range h.fake.Requests() {
		if r.Method != "GET" {
			continue
		}
		if r.Query["watch"] != nil {
			watchRVs = append(watchRVs, r.Query["resourceVersion"][0])
		} else {
			lists++
		}
	}
	return lists, watchRVs
}

func names(pods []*api.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, Key(p))
	}
	slices.Sort(out)
	return out
}

func TestInformerInitialSync(t *testing.T) {
	h := start(t, 0, nil,
		newPod("default", "a", map[string]string{"run": "httpd"}),
		newPod("default", "b", nil),
		newPod("kube-system", "c", map[string]string{"run": "httpd"}))
	h.waitSynced(t)

	if !h.informer.HasSynced() {
		t.Error("HasSynced is false after WaitForSync")
	}
	// Handlers have heard about every listed object by the time sync is reported.
	got := h.recorder.snapshot()
	slices.Sort(got)
	if want := []string{"add default/a@1", "add default/b@2", "add kube-system/c@3"}; !slices.Equal(got, want) {
		t.Errorf("handler calls = %q, want %q", got, want)
	}
	if got := names(h.informer.List("")); !slices.Equal(got, []string{"default/a", "default/b", "kube-system/c"}) {
		t.Errorf("List(all) = %q", got)
	}
	if got := names(h.informer.List("default")); !slices.Equal(got, []string{"default/a", "default/b"}) {
		t.Errorf("List(default) = %q", got)
	}
	matchHTTPD := func(p *api.Pod) bool { return p.Labels["run"] == "httpd" }
	if got := names(h.informer.ListSelector("", matchHTTPD)); !slices.Equal(got, []string{"default/a", "kube-system/c"}) {
		t.Errorf("ListSelector = %q", got)
	}
	if pod, ok := h.informer.Get("kube-system", "c"); !ok || pod.Spec.Containers[0].Image != "httpd" {
		t.Errorf("Get(kube-system, c) = %v, %v", pod, ok)
	}
	if _, ok := h.informer.GetByKey("default/b"); !ok {
		t.Error("GetByKey(default/b) found nothing")
	}
	if _, ok := h.informer.Get("default", "c"); ok {
		t.Error("Get(default, c) found an object in the wrong namespace")
	}
	if h.informer.Len() != 3 {
		t.Errorf("Len = %d", h.informer.Len())
	}
}

func TestInformerDeliversChanges(t *testing.T) {
	h := start(t, 0, nil, newPod("default", "a", nil))
	h.waitSynced(t)
	h.waitWatching(t)

	h.fake.Put(newPod("default", "b", nil))                                      // rv 2
	h.fake.Put(withRV(newPod("default", "a", map[string]string{"v": "2"}), "1")) // rv 3
	h.fake.Remove(newPod("default", "b", nil))                                   // rv 4

	want := []string{"add default/a@1", "add default/b@2", "update default/a@1->3", "delete default/b@4"}
	if got := h.recorder.waitLines(t, len(want)); !slices.Equal(got, want) {
		t.Errorf("handler calls = %q, want %q", got, want)
	}
	if pod, ok := h.informer.Get("default", "a"); !ok || pod.Labels["v"] != "2" {
		t.Errorf("cached a = %+v", pod)
	}
	if _, ok := h.informer.Get("default", "b"); ok {
		t.Error("deleted b is still cached")
	}
}

func TestInformerResumesAfterBrokenStream(t *testing.T) {
	h := start(t, 0, nil, newPod("default", "a", nil), newPod("default", "b", nil))
	h.waitSynced(t)
	h.waitWatching(t)
	h.fake.Put(newPod("default", "c", nil)) // rv 3, seen before the break
	h.recorder.waitLines(t, 3)

	// Break the stream and change things while the informer is away.
	h.fake.HoldWatches()
	h.fake.BreakWatches()
	waitFor(t, "the informer to come back", func() bool { _, rvs := h.requests(); return len(rvs) == 2 })
	h.fake.Put(newPod("default", "d", nil))                                      // rv 4
	h.fake.Put(withRV(newPod("default", "a", map[string]string{"v": "2"}), "1")) // rv 5
	h.fake.Remove(newPod("default", "b", nil))                                   // rv 6
	h.fake.ReleaseWatches()

	want := []string{
		"add default/a@1", "add default/b@2", "add default/c@3",
		"add default/d@4", "update default/a@1->5", "delete default/b@6",
	}
	got := h.recorder.waitLines(t, len(want))
	if !slices.Equal(got, want) {
		t.Errorf("handler calls = %q, want %q (no duplicates, no gaps)", got, want)
	}
	lists, watchRVs := h.requests()
	if lists != 1 || !slices.Equal(watchRVs, []string{"2", "3"}) {
		t.Errorf("requests: %d lists, watches from %q; want 1 list and watches from 2 then 3", lists, watchRVs)
	}
	if got := names(h.informer.List("")); !slices.Equal(got, []string{"default/a", "default/c", "default/d"}) {
		t.Errorf("cache holds %q", got)
	}
}

// expectRelistDifference checks the handler calls after a re-list: exactly
// the difference, in any order, after the initial adds.
func expectRelistDifference(t *testing.T, h *harness, initial int, want []string) {
	t.Helper()
	got := h.recorder.waitLines(t, initial+len(want))[initial:]
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("after re-list handler calls = %q, want %q", got, want)
	}
	waitFor(t, "a watch from the new list", func() bool { return h.fake.OpenWatches() == 1 })
	if lists, _ := h.requests(); lists != 2 {
		t.Errorf("%d list requests, want 2", lists)
	}
}

func TestInformerRelistsWhenWatchExpires(t *testing.T) {
	h := start(t, 0, nil, newPod("default", "a", nil), newPod("default", "b", nil), newPod("default", "c", nil))
	h.waitSynced(t)
	h.waitWatching(t)

	// Changes whose events are lost: only a re-list can reveal them.
	h.fake.PutSilently(withRV(newPod("default", "a", map[string]string{"v": "2"}), "1")) // rv 4
	h.fake.PutSilently(newPod("default", "d", nil))                                      // rv 5
	h.fake.RemoveSilently(newPod("default", "b", nil))                                   // rv 6
	h.fake.ExpireWatches()

	expectRelistDifference(t, h, 3, []string{"update default/a@1->4", "add default/d@5", "delete default/b@2"})
	if got := names(h.informer.List("")); !slices.Equal(got, []string{"default/a", "default/c", "default/d"}) {
		t.Errorf("cache holds %q", got)
	}
	// The new watch follows on from the list.
	h.fake.Put(newPod("default", "e", nil))
	if got := h.recorder.waitLines(t, 7); got[6] != "add default/e@7" {
		t.Errorf("after re-list the watch delivered %q", got[6])
	}
}

func TestInformerRelistsWhenResumeIsGone(t *testing.T) {
	h := start(t, 0, nil, newPod("default", "a", nil), newPod("default", "b", nil))
	h.waitSynced(t)
	h.waitWatching(t)

	h.fake.HoldWatches()
	h.fake.BreakWatches()
	waitFor(t, "the informer to come back", func() bool { _, rvs := h.requests(); return len(rvs) == 2 })
	h.fake.PutSilently(newPod("default", "c", nil)) // rv 3
	h.fake.RemoveSilently(newPod("default", "a", nil))
	h.fake.ExpireWatches() // the held watch resumes from rv 2, now compacted away
	h.fake.ReleaseWatches()

	expectRelistDifference(t, h, 2, []string{"add default/c@3", "delete default/a@1"})
}

func TestInformerResync(t *testing.T) {
	h := start(t, 20*time.Millisecond, nil, newPod("default", "a", nil), newPod("default", "b", nil))
	h.waitSynced(t)
	waitFor(t, "two resyncs of every object", func() bool {
		lines := h.recorder.snapshot()
		return slices.Contains(lines, "update default/a@1->1") && slices.Contains(lines, "update default/b@2->2") &&
			len(lines) >= 2+4
	})
}

func TestInformerRetriesFailedLists(t *testing.T) {
	h := start(t, 0, func(fake *fakeapi.Server) { fake.FailRequests(3) }, newPod("default", "a", nil))

	h.waitSynced(t)
	if lists, _ := h.requests(); lists != 4 {
		t.Errorf("%d list requests, want 3 failures and a success", lists)
	}
	if got := h.recorder.snapshot(); !slices.Equal(got, []string{"add default/a@1"}) {
		t.Errorf("handler calls = %q", got)
	}
}

func TestWaitForSyncGivesUpWithContext(t *testing.T) {
	h := start(t, 0, func(fake *fakeapi.Server) { fake.FailRequests(1 << 30) })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if h.informer.WaitForSync(ctx) || WaitForCacheSync(ctx, h.informer) {
		t.Error("WaitForSync reported success against a failing server")
	}
	if h.informer.HasSynced() {
		t.Error("HasSynced is true against a failing server")
	}
}

// clientGoroutines lists the stacks of goroutines running client or cache code.
func clientGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "kubelite/api/client.") || strings.Contains(g, "kubelite/api/client/cache.(*Informer") {
			found = append(found, g)
		}
	}
	return found
}

func TestInformerLeavesNoGoroutines(t *testing.T) {
	for _, phase := range []string{"watching", "backing off"} {
		t.Run(phase, func(t *testing.T) {
			h := start(t, time.Hour, nil, newPod("default", "a", nil))
			h.waitSynced(t)
			h.waitWatching(t)
			if len(clientGoroutines()) == 0 {
				t.Fatal("found no client goroutines while watching; the check is broken")
			}
			if phase == "backing off" {
				h.fake.FailRequests(1 << 30)
				h.fake.ExpireWatches() // re-list, which keeps failing
				waitFor(t, "failing re-lists", func() bool { lists, _ := h.requests(); return lists >= 3 })
			}
			h.stop()
			// Run waits for its watch goroutines, so nothing should be left;
			// allow a moment anyway for the runtime to retire them.
			waitFor(t, "client goroutines to end", func() bool { return len(clientGoroutines()) == 0 })
		})
	}
}

func TestInformerIgnoresReplayedEvents(t *testing.T) {
	c, err := client.New(&client.Config{Server: "https://127.0.0.1:1"}) // never contacted
	if err != nil {
		t.Fatal(err)
	}
	informer := NewInformer(client.For[api.Pod](c, ""), client.ListOptions{}, 0, WithLogger(testLogger(t)))
	rec := &recorder{}
	informer.AddHandler(rec.handler())

	pod := withRV(newPod("default", "a", nil), "5")
	informer.apply(client.Event[*api.Pod]{Type: api.Added, Object: pod})
	informer.apply(client.Event[*api.Pod]{Type: api.Added, Object: api.DeepCopy(pod)})
	informer.apply(client.Event[*api.Pod]{Type: api.Modified, Object: api.DeepCopy(pod)})
	informer.apply(client.Event[*api.Pod]{Type: api.Bookmark, Object: withRV(&api.Pod{}, "9")})
	informer.apply(client.Event[*api.Pod]{Type: api.Deleted, Object: withRV(newPod("default", "gone", nil), "10")})

	if got := rec.snapshot(); !slices.Equal(got, []string{"add default/a@5"}) {
		t.Errorf("handler calls = %q, want a single add", got)
	}
	if informer.lastResourceVersion != "10" {
		t.Errorf("resume point = %q, want 10", informer.lastResourceVersion)
	}
}

func TestKeys(t *testing.T) {
	pod := newPod("default", "web", nil)
	node := &api.Node{ObjectMeta: api.ObjectMeta{Name: "n1"}}
	if Key(pod) != "default/web" || Key(node) != "n1" {
		t.Errorf("Key = %q, %q", Key(pod), Key(node))
	}
	for key, want := range map[string][2]string{"default/web": {"default", "web"}, "n1": {"", "n1"}} {
		if ns, name := SplitKey(key); ns != want[0] || name != want[1] {
			t.Errorf("SplitKey(%q) = %q, %q", key, ns, name)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{initial: 100 * time.Millisecond, max: time.Second}
	wantCaps := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, c := range wantCaps {
		c *= time.Millisecond
		if d := b.next(); d > c || d < c*3/4 {
			t.Errorf("attempt %d: delay %v, want within [%v, %v]", i, d, c*3/4, c)
		}
	}
	b.reset()
	if d := b.next(); d > 100*time.Millisecond {
		t.Errorf("after reset: delay %v", d)
	}
}
