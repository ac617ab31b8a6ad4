// Package leader elects one leader among the kubelite servers that share an
// etcd cluster, so that exactly one of them runs the controllers.
//
// It uses etcd's election recipe (go.etcd.io/etcd/client/v3/concurrency):
// each candidate holds a session (an etcd lease kept alive by the client)
// and puts a key under the election prefix bound to it; the candidate whose
// key was created first leads. When a leader dies its lease expires after
// the session TTL, its key goes with it, and the next candidate leads.
// A leader that cannot renew its lease (a partition, a dead etcd) sees its
// session end and stops leading at the latest when the lease would expire,
// so two leaders never act at once for longer than the clock drift between
// them.
package leader

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"kubelite/api/client"
)

// DefaultTTL is the session TTL: how long a dead leader goes unnoticed.
const DefaultTTL = 10 * time.Second

// keyPrefix is where the election keys live in etcd, beside (not inside)
// the API's /registry.
const keyPrefix = "/kubelite/election/"

// retryDelay spaces attempts after a failed session or campaign.
const retryDelay = time.Second

// Option tunes Run.
type Option func(*options)

type options struct {
	ttl    time.Duration
	logger *slog.Logger
	mirror *client.Client
}

// WithTTL sets the session TTL (rounded up to whole seconds; at least 1 s).
func WithTTL(ttl time.Duration) Option { return func(o *options) { o.ttl = ttl } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(logger *slog.Logger) Option { return func(o *options) { o.logger = logger } }

// WithLeaseMirror makes the leader mirror its holding into the
// coordination.k8s.io Lease kube-system/{name}, as Kubernetes' own
// controller manager shows its leader (`kubectl-lite get lease -n kube-system`).
// The etcd election stays the authority; the Lease is for people.
func WithLeaseMirror(c *client.Client) Option { return func(o *options) { o.mirror = c } }

// Run campaigns for leadership of the election name as identity, and runs
// lead while it leads. lead's context is cancelled when leadership is lost
// (or ctx ends); lead must return then, and Run waits for it before it
// campaigns again, so one process never leads twice at once. Run returns
// when ctx ends and lead has returned.
func Run(ctx context.Context, cli *clientv3.Client, name, identity string, lead func(ctx context.Context), opts ...Option) {
	o := options{ttl: DefaultTTL, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	e := &elector{
		cli:      cli,
		name:     name,
		identity: identity,
		ttl:      max(1, int((o.ttl+time.Second-1)/time.Second)),
		mirror:   o.mirror,
		logger:   o.logger.With("election", name, "identity", identity),
	}
	for ctx.Err() == nil {
		if err := e.campaignAndLead(ctx, lead); err != nil && ctx.Err() == nil {
			e.logger.Warn("leader election failed; retrying", "err", err, "retryIn", retryDelay)
		}
		// Pause before campaigning again, after a failure or a lead that
		// returned on its own, so that nothing spins.
		select {
		case <-ctx.Done():
		case <-time.After(retryDelay):
		}
	}
}

type elector struct {
	cli      *clientv3.Client
	name     string
	identity string
	ttl      int // seconds
	mirror   *client.Client
	logger   *slog.Logger
}

// campaignAndLead runs one term: open a session, campaign until elected,
// lead until the session ends or ctx ends, then give the lease up.
func (e *elector) campaignAndLead(ctx context.Context, lead func(ctx context.Context)) error {
	// Grant the lease with ctx, so that an unreachable etcd cannot hold Run
	// past ctx; the session then keeps it alive.
	grant, err := e.cli.Grant(ctx, int64(e.ttl))
	if err != nil {
		return fmt.Errorf("granting an etcd lease: %w", err)
	}
	session, err := concurrency.NewSession(e.cli, concurrency.WithTTL(e.ttl), concurrency.WithLease(grant.ID))
	if err != nil {
		return fmt.Errorf("opening an etcd session: %w", err)
	}
	// Closing revokes the lease: our key goes at once and the next
	// candidate need not wait for the TTL.
	defer func() {
		if err := session.Close(); err != nil && ctx.Err() == nil {
			e.logger.Debug("revoking the election lease failed; it will expire", "err", err)
		}
	}()

	// The session's end cancels everything below: the campaign and the
	// term. (Deferred calls run in reverse: the term ends, then its
	// watchers are waited for, then the session closes.)
	var watchers sync.WaitGroup
	defer watchers.Wait()
	termCtx, endTerm := context.WithCancel(ctx)
	defer endTerm()
	watchers.Go(func() {
		select {
		case <-session.Done():
			endTerm()
		case <-termCtx.Done():
		}
	})

	election := concurrency.NewElection(session, keyPrefix+e.name)
	if err := election.Campaign(termCtx, e.identity); err != nil {
		if termCtx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("the etcd session ended while campaigning: %w", err)
		}
		return fmt.Errorf("campaigning: %w", err)
	}

	started := time.Now()
	e.logger.Info("became leader")
	if e.mirror != nil {
		watchers.Go(func() { e.mirrorLease(termCtx, started) })
	}
	lead(termCtx)
	lost := ctx.Err() == nil && termCtx.Err() != nil
	endTerm()
	if lost {
		e.logger.Warn("lost leadership: the etcd session ended", "ledFor", time.Since(started).Round(time.Millisecond))
	} else {
		e.logger.Info("stopped leading", "ledFor", time.Since(started).Round(time.Millisecond))
	}
	return nil
}
