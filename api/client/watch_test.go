package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"kubelite/api"
)

// collect reads events until the channel closes, failing the test if that
// takes too long.
func collect[E any](t *testing.T, events <-chan E) []E {
	t.Helper()
	var got []E
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return got
			}
			got = append(got, e)
		case <-timeout:
			t.Fatalf("watch channel not closed; got %d events so far", len(got))
		}
	}
}

// next reads one event, failing the test if none comes in time.
func next[E any](t *testing.T, events <-chan E) E {
	t.Helper()
	select {
	case e, ok := <-events:
		if !ok {
			t.Fatal("watch channel closed, want an event")
		}
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("no watch event")
	}
	panic("unreachable")
}

func TestTypedWatch(t *testing.T) {
	fake := startFake(t)
	ctx := testContext(t)
	pods := For[api.Pod](newClient(t, fake, nil), "default")

	existing, err := pods.Create(ctx, newPod("default", "before-watch", nil))
	if err != nil {
		t.Fatal(err)
	}
	events, err := pods.Watch(ctx, ListOptions{ResourceVersion: existing.ResourceVersion})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if q := fake.Requests()[len(fake.Requests())-1].Query; q["watch"][0] != "true" || q["resourceVersion"][0] != existing.ResourceVersion {
		t.Errorf("watch query = %v", q)
	}

	created, err := pods.Create(ctx, newPod("default", "web", nil))
	if err != nil {
		t.Fatal(err)
	}
	e := next(t, events)
	if e.Type != api.Added || e.Object.Name != "web" || e.Object.ResourceVersion != created.ResourceVersion || e.Object.Kind != "Pod" {
		t.Errorf("first event = %s %+v", e.Type, e.Object)
	}
	update := api.DeepCopy(created)
	update.Labels = map[string]string{"run": "httpd"}
	if _, err := pods.Update(ctx, update); err != nil {
		t.Fatal(err)
	}
	if e := next(t, events); e.Type != api.Modified || e.Object.Labels["run"] != "httpd" {
		t.Errorf("second event = %s %+v", e.Type, e.Object)
	}
	if err := pods.Delete(ctx, "web", DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if e := next(t, events); e.Type != api.Deleted || e.Object.Name != "web" {
		t.Errorf("third event = %s %+v", e.Type, e.Object)
	}

	fake.ExpireWatches()
	rest := collect(t, events)
	if len(rest) != 1 || rest[0].Type != api.Error || !api.IsGone(rest[0].Err) {
		t.Fatalf("after expiry got %+v, want one ERROR event with 410 Gone", rest)
	}
	var status *api.Status
	if !errors.As(rest[0].Err, &status) || status.Code != http.StatusGone {
		t.Errorf("ERROR event carries %v", rest[0].Err)
	}

	// Resuming from before the expiry is answered with 410 at once.
	events, err = pods.Watch(ctx, ListOptions{ResourceVersion: existing.ResourceVersion})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if got := collect(t, events); len(got) != 1 || !api.IsGone(got[0].Err) {
		t.Errorf("watch from an expired resourceVersion got %+v", got)
	}
}

func TestWatchBrokenStreamEndsWithError(t *testing.T) {
	fake := startFake(t)
	ctx := testContext(t)
	pods := For[api.Pod](newClient(t, fake, nil), "")
	events, err := pods.Watch(ctx, ListOptions{ResourceVersion: fake.ResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watch to open", func() bool { return fake.OpenWatches() == 1 })
	fake.BreakWatches()
	got := collect(t, events)
	if len(got) != 1 || got[0].Type != api.Error || got[0].Err == nil || api.ReasonOf(got[0].Err) != "" {
		t.Errorf("broken stream gave %+v, want one ERROR event with a transport error", got)
	}
}

func TestWatchCancelClosesChannel(t *testing.T) {
	fake := startFake(t)
	ctx, cancel := context.WithCancel(testContext(t))
	events, err := For[api.Pod](newClient(t, fake, nil), "").Watch(ctx, ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if got := collect(t, events); len(got) != 0 {
		t.Errorf("after cancel got %+v", got)
	}
}

// TestWatchDecoding feeds hand-written lines, as a server may send them.
func TestWatchDecoding(t *testing.T) {
	lines := []string{
		`{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"41"}}}`,
		``,
		`{"type":"ADDED","object":{"metadata":{"name":"a","namespace":"default","resourceVersion":"42"}}}`,
		`{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcd is unavailable","code":503}}`,
		`{"type":"ADDED","object":{"metadata":{"name":"never-delivered"}}}`,
	}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, line := range lines {
			fmt.Fprintln(w, line)
		}
	}))
	t.Cleanup(server.Close)
	c, err := New(&Config{Server: server.URL})
	if err != nil {
		t.Fatal(err)
	}
	events, err := For[api.Pod](c, "").Watch(testContext(t), ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, events)
	if len(got) != 3 {
		t.Fatalf("got %d events, want 3: %+v", len(got), got)
	}
	if got[0].Type != api.Bookmark || got[0].Object.ResourceVersion != "41" {
		t.Errorf("event 0 = %+v", got[0])
	}
	if got[1].Type != api.Added || got[1].Object.Name != "a" || got[1].Object.Kind != "Pod" {
		t.Errorf("event 1 = %+v", got[1])
	}
	var status *api.Status
	if got[2].Type != api.Error || !errors.As(got[2].Err, &status) || status.Code != 503 ||
		status.Reason != api.ReasonServiceUnavail || status.Message != "etcd is unavailable" {
		t.Errorf("event 2 = %+v (%v)", got[2], got[2].Err)
	}
}

func TestWatchUndecodableLine(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `{"type":"ADDED","object":{"metadata":{"name":"a"}}}`)
		fmt.Fprintln(w, `{"type":"ADDED","object":{"metadata":{"name":7}}}`)
		fmt.Fprintln(w, `not json`)
	}))
	t.Cleanup(server.Close)
	c, err := New(&Config{Server: server.URL})
	if err != nil {
		t.Fatal(err)
	}
	events, err := For[api.Pod](c, "").Watch(testContext(t), ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, events)
	if len(got) != 2 || got[0].Type != api.Added || got[1].Type != api.Error || got[1].Err == nil {
		t.Errorf("got %+v, want ADDED then one ERROR for the undecodable object", got)
	}
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
