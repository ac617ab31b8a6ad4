package events

import (
	"context"
	"fmt"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver/apiservertest"
)

// waitFor polls cond until it holds; the deadline is generous because the
// test asserts an eventual state, not a speed.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok && err == nil {
			return
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s (last error: %v)", what, lastErr)
}

func startBroadcaster(t *testing.T, c *client.Client, cfg Config) *Broadcaster {
	t.Helper()
	b := NewBroadcaster(c, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return b
}

func listEvents(t *testing.T, c *client.Client, ns string) []api.Event {
	t.Helper()
	list, err := client.For[api.Event](c, ns).List(context.Background(), client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func TestRepeatsAreAggregated(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	b := startBroadcaster(t, srv.Admin, Config{Host: "server-1", Instance: "server-1_abc"})
	rec := b.NewRecorder("replicaset-controller")

	rs := &api.ReplicaSet{ObjectMeta: api.ObjectMeta{Name: "httpd-5d8f", Namespace: "default", UID: "uid-1"}}
	for range 3 {
		rec.Event(rs, api.EventNormal, "SuccessfulCreate", "Created pod: httpd-5d8f-abcde")
	}
	rec.Event(rs, api.EventNormal, "SuccessfulDelete", "Deleted pod: httpd-5d8f-abcde")

	var events []api.Event
	waitFor(t, "two events, the first counted three times", func() (bool, error) {
		events = listEvents(t, srv.Admin, "default")
		counts := map[string]int32{}
		for _, e := range events {
			counts[e.Reason] += e.Count
		}
		return len(events) == 2 && counts["SuccessfulCreate"] == 3 && counts["SuccessfulDelete"] == 1, nil
	})
	for _, e := range events {
		if e.Reason != "SuccessfulCreate" {
			continue
		}
		want := api.ObjectReference{Kind: "ReplicaSet", APIVersion: "apps/v1", Namespace: "default", Name: "httpd-5d8f", UID: "uid-1"}
		if e.InvolvedObject != want {
			t.Errorf("involvedObject = %+v, want %+v", e.InvolvedObject, want)
		}
		if e.Type != api.EventNormal || e.Message != "Created pod: httpd-5d8f-abcde" {
			t.Errorf("type, message = %q, %q", e.Type, e.Message)
		}
		if e.Source.Component != "replicaset-controller" || e.Source.Host != "server-1" ||
			e.ReportingComponent != "replicaset-controller" || e.ReportingInstance != "server-1_abc" {
			t.Errorf("source = %+v, reporting = %q/%q", e.Source, e.ReportingComponent, e.ReportingInstance)
		}
		if e.FirstTimestamp.IsZero() || e.LastTimestamp.Before(e.FirstTimestamp.Time) {
			t.Errorf("timestamps first=%v last=%v", e.FirstTimestamp, e.LastTimestamp)
		}
	}
}

func TestClusterScopedObjectsReportInDefault(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	b := startBroadcaster(t, srv.Admin, Config{})
	node := &api.Node{ObjectMeta: api.ObjectMeta{Name: "node-1", UID: "uid-n"}}
	b.NewRecorder("node-controller").Event(node, api.EventWarning, "NodeNotReady", "Node node-1 status is now: NodeNotReady")

	waitFor(t, "the NodeNotReady event in default", func() (bool, error) {
		for _, e := range listEvents(t, srv.Admin, "default") {
			if e.Reason == "NodeNotReady" && e.InvolvedObject.Kind == "Node" && e.InvolvedObject.Namespace == "" && e.Type == api.EventWarning {
				return true, nil
			}
		}
		return false, nil
	})
}

func TestRecordingNeverBlocks(t *testing.T) {
	// Not running: nothing drains the queue.
	b := NewBroadcaster(nil, Config{QueueSize: 2})
	rec := b.NewRecorder("test")
	pod := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "p", Namespace: "default"}}
	for i := range 10 {
		rec.Event(pod, api.EventNormal, "Reason", fmt.Sprint(i))
	}
	if got := len(b.queue); got != 2 {
		t.Fatalf("queued %d events, want the queue's size 2 (the rest dropped)", got)
	}
}

func TestSweepDeletesOldEvents(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	now := time.Now()
	b := NewBroadcaster(srv.Admin, Config{MaxAge: time.Hour, Now: func() time.Time { return now }})
	ctx := context.Background()
	events := client.For[api.Event](srv.Admin, "default")
	for name, last := range map[string]time.Time{
		"old":    now.Add(-2 * time.Hour),
		"recent": now.Add(-10 * time.Minute),
	} {
		_, err := events.Create(ctx, &api.Event{
			ObjectMeta:     api.ObjectMeta{Name: name, Namespace: "default"},
			InvolvedObject: api.ObjectReference{Kind: "Pod", Namespace: "default", Name: "p"},
			Reason:         "Test", Type: api.EventNormal, Count: 1,
			FirstTimestamp: api.NewTime(last), LastTimestamp: api.NewTime(last),
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	deleted, err := b.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if deleted != 1 {
		t.Errorf("deleted %d events, want 1", deleted)
	}
	left := listEvents(t, srv.Admin, "default")
	if len(left) != 1 || left[0].Name != "recent" {
		t.Errorf("left %v, want only the recent event", left)
	}
}

func TestLRUForgetsLeastRecentlyUsed(t *testing.T) {
	c := newLRU(2)
	a, b, d := aggregationKey{name: "a"}, aggregationKey{name: "b"}, aggregationKey{name: "d"}
	c.put(a, &api.Event{})
	c.put(b, &api.Event{})
	c.get(a) // a is now the most recent
	c.put(d, &api.Event{})
	if _, ok := c.get(b); ok {
		t.Error("b should have been forgotten")
	}
	for _, k := range []aggregationKey{a, d} {
		if _, ok := c.get(k); !ok {
			t.Errorf("%s should be remembered", k.name)
		}
	}
}
