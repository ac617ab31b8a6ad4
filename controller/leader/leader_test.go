package leader

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kubelite/apiserver/etcd/etcdtest"
)

// candidate runs Run for one identity on its own etcd client and records
// when it leads.
type candidate struct {
	identity string
	cli      *clientv3.Client
	cancel   context.CancelFunc
	done     chan struct{}
	leading  atomic.Bool
	terms    atomic.Int32
}

// leaderBoard checks that at most one candidate leads at any moment.
type leaderBoard struct {
	t       *testing.T
	current atomic.Int32
}

func (b *leaderBoard) lead(c *candidate) func(ctx context.Context) {
	return func(ctx context.Context) {
		if n := b.current.Add(1); n > 1 {
			b.t.Errorf("%s leads while %d others lead too", c.identity, n-1)
		}
		c.terms.Add(1)
		c.leading.Store(true)
		<-ctx.Done()
		c.leading.Store(false)
		b.current.Add(-1)
	}
}

func startCandidate(t *testing.T, endpoints []string, identity string, board *leaderBoard) *candidate {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &candidate{identity: identity, cli: cli, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		Run(ctx, cli, "kube-controller-manager", identity, board.lead(c), WithTTL(2*time.Second))
	}()
	t.Cleanup(func() {
		c.cancel()
		<-c.done
		cli.Close()
	})
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFailoverWhenTheLeaderDies(t *testing.T) {
	endpoints := etcdtest.Start(t).Endpoints()
	board := &leaderBoard{t: t}
	a := startCandidate(t, endpoints, "server-a", board)
	b := startCandidate(t, endpoints, "server-b", board)

	var leader, follower *candidate
	waitFor(t, "a leader", func() bool {
		switch {
		case a.leading.Load():
			leader, follower = a, b
		case b.leading.Load():
			leader, follower = b, a
		}
		return leader != nil
	})

	// The leader's process dies: its client goes, its lease is no longer
	// renewed. It stops leading; the other takes over once the lease expires.
	leader.cli.Close()
	waitFor(t, "the old leader to stop", func() bool { return !leader.leading.Load() })
	waitFor(t, "the other candidate to lead", func() bool { return follower.leading.Load() })

	// A leader that shuts down cleanly hands over and Run returns.
	follower.cancel()
	select {
	case <-follower.done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if follower.leading.Load() {
		t.Error("the stopped candidate still leads")
	}
}

func TestCleanShutdownHandsOverAtOnce(t *testing.T) {
	endpoints := etcdtest.Start(t).Endpoints()
	board := &leaderBoard{t: t}
	a := startCandidate(t, endpoints, "server-a", board)
	waitFor(t, "a to lead", a.leading.Load)
	b := startCandidate(t, endpoints, "server-b", board)

	a.cancel()
	<-a.done
	// No TTL to wait out: a revoked its lease. (Generous deadline all the same.)
	waitFor(t, "b to lead", b.leading.Load)
	if a.terms.Load() != 1 {
		t.Errorf("a led %d times, want 1", a.terms.Load())
	}
}

func TestLeadReturningEarlyCampaignsAgain(t *testing.T) {
	endpoints := etcdtest.Start(t).Endpoints()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var terms atomic.Int32
	var wg sync.WaitGroup
	wg.Go(func() {
		Run(ctx, cli, "test", "only", func(context.Context) { terms.Add(1) }, WithTTL(time.Second))
	})
	waitFor(t, "a second term", func() bool { return terms.Load() >= 2 })
	cancel()
	wg.Wait()
}
