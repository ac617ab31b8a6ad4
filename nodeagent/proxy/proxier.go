package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"kubelite/api"
	"kubelite/api/client/cache"
)

// Source is a list+watch cache of one resource, as the proxier uses it:
// *cache.Informer satisfies it.
type Source[PT any] interface {
	List(namespace string) []PT
	// WaitForSync blocks until the first list is loaded, or ctx ends; it
	// reports whether it loaded.
	WaitForSync(ctx context.Context) bool
	AddHandler(h cache.Handler[PT])
}

// The shared caches are Sources.
var (
	_ Source[*api.Service]   = (*cache.Informer[api.Service, *api.Service])(nil)
	_ Source[*api.Endpoints] = (*cache.Informer[api.Endpoints, *api.Endpoints])(nil)
	_ Source[*api.Node]      = (*cache.Informer[api.Node, *api.Node])(nil)
)

// Sources are the caches the proxier reads.
type Sources struct {
	Services  Source[*api.Service]   // required
	Endpoints Source[*api.Endpoints] // required
	// Nodes tells which nodes are ready, to choose who announces each
	// load-balancer IP (AnnouncingNode). Without it this node announces none.
	Nodes Source[*api.Node]
}

// Config configures a Proxier.
type Config struct {
	// NodeName, ClusterCIDR and LocalDNS are as in RuleInput.
	NodeName    string
	ClusterCIDR netip.Prefix
	LocalDNS    netip.AddrPort

	// MinSyncInterval is the least time between two syncs: changes that
	// arrive meanwhile are applied together by the next one. Default 100 ms.
	MinSyncInterval time.Duration
	// Mode is how rules are written: ModeIPTables (default) or
	// ModeNFTables. The Host must have the matching interface.
	Mode Mode

	// SyncPeriod is how often everything is rewritten even without a
	// change, repairing whatever else changed the rules. Between these
	// full syncs, a change rewrites only what it touches. Default 1 h, as
	// kube-proxy's full syncs: on the nf_tables backend rewriting 10,000
	// Services' rules takes minutes.
	SyncPeriod time.Duration
	// CanaryInterval is how often the canary chains are checked. Default 5 s.
	CanaryInterval time.Duration

	Logger     *slog.Logger          // default slog.Default()
	Registerer prometheus.Registerer // where metrics are registered; nil: nowhere
}

// Defaults for Config.
const (
	DefaultMinSyncInterval = 100 * time.Millisecond
	DefaultSyncPeriod      = time.Hour
	DefaultCanaryInterval  = 5 * time.Second
)

// Proxier keeps a node's rules equal to BuildRules (iptables mode) or
// BuildNFTRules (nftables mode) of the current Services and Endpoints, as
// kube-proxy does.
//
// It works level-triggered. Cache handlers only note that something
// changed and wake the sync loop; each sync reads the whole current state
// from the caches, renders every rule (reusing those of unchanged Service
// ports), and writes what differs from the last sync in a single
// transaction. A missed or repeated event therefore costs nothing, and a
// burst of changes costs one sync.
type Proxier struct {
	cfg     Config
	src     Sources
	host    *Host
	logger  *slog.Logger
	metrics *metrics
	running atomic.Bool

	// wake has room for one signal: a handler that finds it full knows a
	// sync is already due, and the change will be part of it.
	wake chan struct{}

	mu sync.Mutex
	// endpointsChangedAt holds, per Endpoints object, when the oldest
	// change not yet applied was seen, for the network programming latency.
	endpointsChangedAt map[string]time.Time

	// The rest belongs to the goroutine running Run.

	// dataplane writes the rules: iptables or nftables mode.
	dataplane dataplane
	// lastPorts are the Service ports of the last successful sync, to find
	// the conntrack entries a change leaves stale.
	lastPorts []servicePort
	// portsMemo spares the next sync working out the ports of the
	// Services that have not changed.
	portsMemo portsMemo

	// afterSync, if set, is called after every sync attempt with the time
	// it started and its result (tests).
	afterSync func(started time.Time, err error)
}

// New returns a Proxier for the node host, fed by src. It registers its
// handlers on the caches at once; whether the caches are already running
// does not matter, as the first sync lists everything anyway.
func New(cfg Config, src Sources, host *Host) (*Proxier, error) {
	if src.Services == nil || src.Endpoints == nil {
		return nil, errors.New("proxy: the Services and Endpoints sources are required")
	}
	if host == nil || host.Conntrack == nil || host.Sysctls == nil {
		return nil, errors.New("proxy: host must have Conntrack and Sysctls")
	}
	mode, err := ParseMode(string(cfg.Mode))
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if cfg.NodeName == "" {
		return nil, errors.New("proxy: NodeName is required")
	}
	if cfg.MinSyncInterval <= 0 {
		cfg.MinSyncInterval = DefaultMinSyncInterval
	}
	if cfg.SyncPeriod <= 0 {
		cfg.SyncPeriod = DefaultSyncPeriod
	}
	if cfg.CanaryInterval <= 0 {
		cfg.CanaryInterval = DefaultCanaryInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Proxier{
		cfg:                cfg,
		src:                src,
		host:               host,
		logger:             cfg.Logger.With("component", "proxy", "node", cfg.NodeName),
		metrics:            newMetrics(),
		wake:               make(chan struct{}, 1),
		endpointsChangedAt: make(map[string]time.Time),
	}
	switch mode {
	case ModeIPTables:
		if host.IPTables == nil {
			return nil, errors.New("proxy: iptables mode needs host.IPTables")
		}
		p.dataplane = newIPTablesDataplane(host.IPTables, p.logger)
	case ModeNFTables:
		if host.NFTables == nil {
			return nil, errors.New("proxy: nftables mode needs host.NFTables")
		}
		p.dataplane = newNFTablesDataplane(host.NFTables, p.logger)
	}
	if err := p.metrics.register(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("proxy: registering metrics: %w", err)
	}
	mode, backend := p.dataplane.describe()
	p.metrics.info.WithLabelValues(string(mode), backend).Set(1)
	p.addHandlers()
	return p, nil
}

// addHandlers makes every relevant change wake the sync loop. Handlers do
// nothing else: the informer calls them one at a time, and work done here
// would hold up every other handler of the cache.
func (p *Proxier) addHandlers() {
	p.src.Services.AddHandler(cache.Handler[*api.Service]{
		OnAdd: func(*api.Service) { p.requestSync() },
		OnUpdate: func(old, cur *api.Service) {
			if changed(old, cur) {
				p.requestSync()
			}
		},
		OnDelete: func(*api.Service) { p.requestSync() },
	})
	p.src.Endpoints.AddHandler(cache.Handler[*api.Endpoints]{
		OnAdd: p.endpointsChanged,
		OnUpdate: func(old, cur *api.Endpoints) {
			if changed(old, cur) {
				p.endpointsChanged(cur)
			}
		},
		OnDelete: p.endpointsChanged,
	})
	if p.src.Nodes != nil {
		// Only readiness matters (for AnnouncingNode); a node's heartbeat
		// updates its status every few seconds and must not cause a sync.
		p.src.Nodes.AddHandler(cache.Handler[*api.Node]{
			OnAdd: func(*api.Node) { p.requestSync() },
			OnUpdate: func(old, cur *api.Node) {
				if old.IsReady() != cur.IsReady() {
					p.requestSync()
				}
			},
			OnDelete: func(*api.Node) { p.requestSync() },
		})
	}
}

// changed tells a real update from an informer's periodic re-delivery of
// an object it already delivered.
func changed(old, cur api.Object) bool {
	if old == cur {
		return false
	}
	oldVersion, curVersion := old.GetObjectMeta().ResourceVersion, cur.GetObjectMeta().ResourceVersion
	return oldVersion == "" || oldVersion != curVersion
}

func (p *Proxier) endpointsChanged(eps *api.Endpoints) {
	key := cache.Key(eps)
	p.mu.Lock()
	if _, pending := p.endpointsChangedAt[key]; !pending {
		p.endpointsChangedAt[key] = time.Now()
	}
	p.mu.Unlock()
	p.requestSync()
}

func (p *Proxier) requestSync() {
	select {
	case p.wake <- struct{}{}:
	default: // a sync is already due
	}
}

// Run sets the node's sysctls, waits until the caches have loaded, then
// keeps the rules in sync until ctx ends. It returns an error only if the
// node cannot be prepared; failed syncs are logged and retried.
func (p *Proxier) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("proxy: Run called twice")
	}
	if err := p.setSysctls(); err != nil {
		return err
	}
	p.logger.Info("waiting for the Services and Endpoints caches")
	if !p.waitForCaches(ctx) {
		return nil
	}
	mode, backend := p.dataplane.describe()
	p.logger.Info("caches synced; starting to program Services",
		"mode", mode, "backend", backend, "minSyncInterval", p.cfg.MinSyncInterval, "syncPeriod", p.cfg.SyncPeriod)
	p.cleanupOtherMode(ctx)
	p.syncLoop(ctx)
	return nil
}

// setSysctls sets what the rules rely on, as kube-proxy does.
func (p *Proxier) setSysctls() error {
	// The node forwards packets between clients and pods.
	if err := p.host.Sysctls.Set("net/ipv4/ip_forward", "1"); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	// Packets DNATed to 127.0.0.1 (a node port on localhost, a DNS server
	// on loopback) must not be dropped as martians.
	if err := p.host.Sysctls.Set("net/ipv4/conf/all/route_localnet", "1"); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	// A pod's reply to a pod on the same bridge is switched, not routed;
	// without this it skips iptables, misses the reverse DNAT, and the
	// client drops it.
	if err := p.host.Sysctls.Set("net/bridge/bridge-nf-call-iptables", "1"); err != nil {
		p.logger.Warn("cannot make bridged traffic pass iptables; pods may fail to reach Services backed by pods on the same node", "err", err)
	}
	return nil
}

// waitForCaches waits until every cache has loaded: before that, a
// Service whose Endpoints have not arrived yet would look like one without
// endpoints, and its clients would be refused.
func (p *Proxier) waitForCaches(ctx context.Context) bool {
	if !p.src.Services.WaitForSync(ctx) || !p.src.Endpoints.WaitForSync(ctx) {
		return false
	}
	return p.src.Nodes == nil || p.src.Nodes.WaitForSync(ctx)
}

// syncLoop syncs, then waits for a reason to sync again: a change (after
// at least MinSyncInterval), the periodic resync, a retry after a failure,
// or a canary chain gone missing. The first sync, a periodic one, a retry
// and a canary alarm are full syncs.
func (p *Proxier) syncLoop(ctx context.Context) {
	resync := time.NewTicker(p.cfg.SyncPeriod)
	defer resync.Stop()
	canary := time.NewTicker(p.cfg.CanaryInterval)
	defer canary.Stop()

	full := true
	failures := 0
	var lastSync time.Time
	for {
		if !sleep(ctx, p.cfg.MinSyncInterval-time.Since(lastSync)) {
			return
		}
		// This sync reads the caches afresh, so it covers every change
		// signalled until now.
		select {
		case <-p.wake:
		default:
		}
		lastSync = time.Now()
		err := p.syncRules(ctx, full)
		if p.afterSync != nil {
			p.afterSync(lastSync, err)
		}
		if ctx.Err() != nil {
			return
		}

		var retry, tidy <-chan time.Time
		if err != nil {
			failures++
			delay := retryDelay(failures, min(p.cfg.SyncPeriod, maxRetryDelay))
			p.logger.Error("syncing rules failed; retrying", "err", err, "retryIn", delay, "failures", failures)
			retry = time.After(delay)
		} else {
			failures = 0
			tidy = time.After(tidyDelay)
		}
		var ok bool
		if full, ok = p.nextSync(ctx, resync.C, canary.C, retry, tidy); !ok {
			return
		}
		// After a failure nothing is known for sure: start from scratch.
		full = full || err != nil
	}
}

// tidyDelay is how long after a sync its deferred work is done, unless
// another sync comes first: a burst of changes (a rolling update) is
// tidied up once.
const tidyDelay = time.Second

// nextSync waits for a reason to sync again and reports whether that sync
// must be full; ok is false when ctx has ended. Meanwhile it runs the
// dataplane's deferred work when tidy fires, and the canary check.
func (p *Proxier) nextSync(ctx context.Context, resync, canary, retry, tidy <-chan time.Time) (full, ok bool) {
	for {
		select {
		case <-ctx.Done():
			return false, false
		case <-p.wake:
			return false, true
		case <-resync:
			return true, true
		case <-retry:
			return true, true
		case <-tidy:
			if err := p.dataplane.tidy(ctx); err != nil {
				p.logger.Warn("deferred cleanup failed; rewriting everything", "err", err)
				return true, true
			}
		case <-canary:
			if !p.dataplane.intact(ctx) {
				p.logger.Warn("canary gone: our rules were flushed by someone else; rewriting everything")
				return true, true
			}
		}
	}
}

// maxRetryDelay bounds the wait between retries of a failing sync.
const maxRetryDelay = 30 * time.Second

// retryDelay doubles from one second up to max.
func retryDelay(failures int, max time.Duration) time.Duration {
	delay := time.Second << min(failures-1, 16)
	return min(delay, max)
}

// syncRules makes the kernel's rules implement the current state of the
// caches. A full sync also re-creates the base rules and reads back what
// exists, instead of trusting what the previous sync left; a partial one
// writes only what changed since the last successful sync.
func (p *Proxier) syncRules(ctx context.Context, full bool) (err error) {
	start := time.Now()
	defer func() {
		if err != nil {
			p.metrics.syncFailures.Inc()
		}
	}()

	// Take the pending change times before listing: every change noted
	// before this point is in the caches the list below reads.
	changedAt := p.takeEndpointsChanges()
	services := p.src.Services.List("")
	in := RuleInput{
		Services:    services,
		Endpoints:   p.src.Endpoints.List(""),
		NodeName:    p.cfg.NodeName,
		ClusterCIDR: p.cfg.ClusterCIDR,
		LocalDNS:    p.cfg.LocalDNS,
	}
	ports, memo := servicePortsMemo(in, p.portsMemo)
	p.portsMemo = memo
	stats, err := p.dataplane.sync(ctx, in, ports, full)
	if err != nil {
		p.returnEndpointsChanges(changedAt)
		return fmt.Errorf("applying rules: %w", err)
	}
	applied := time.Now()
	for _, seen := range changedAt {
		p.metrics.programmingLatency.Observe(applied.Sub(seen).Seconds())
	}

	// Housekeeping that needs the new rules in place.
	if flows := staleConntrackFlows(p.lastPorts, ports); len(flows) > 0 {
		n, err := p.host.Conntrack.DeleteFlows(ctx, flows)
		if err != nil {
			p.logger.Warn("deleting stale conntrack entries failed", "err", err)
		} else {
			p.logger.Debug("deleted stale conntrack entries", "entries", n, "filters", len(flows))
		}
	}
	p.lastPorts = ports
	var announceErr error
	if p.host.Addresses != nil && p.src.Nodes != nil {
		addrs := announcedAddresses(services, readyNodeNames(p.src.Nodes.List("")), p.cfg.NodeName)
		if err := p.host.Addresses.Announce(ctx, addrs); err != nil {
			announceErr = fmt.Errorf("announcing load-balancer IPs: %w", err)
		}
	}

	elapsed := time.Since(start)
	p.metrics.recordSync(elapsed, stats)
	p.logger.Debug("synced rules", "full", full, "services", len(services), "ports", len(ports),
		"wroteAll", stats.full, "written", stats.written, "total", stats.total, "took", elapsed)
	return announceErr
}

func (p *Proxier) takeEndpointsChanges() map[string]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	taken := p.endpointsChangedAt
	p.endpointsChangedAt = make(map[string]time.Time)
	return taken
}

// returnEndpointsChanges puts back the change times of a failed sync,
// keeping the older time of a change seen again meanwhile.
func (p *Proxier) returnEndpointsChanges(taken map[string]time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, seen := range taken {
		if newer, ok := p.endpointsChangedAt[key]; !ok || seen.Before(newer) {
			p.endpointsChangedAt[key] = seen
		}
	}
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
