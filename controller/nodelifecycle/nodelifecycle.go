// Package nodelifecycle watches over nodes, as Kubernetes' node lifecycle
// and node IPAM controllers do:
//
//   - Heartbeats. Node agents renew a Lease in kube-node-lease and report
//     their Ready condition. A node silent for the grace period (40 s) has
//     its conditions set to Unknown ("Kubelet stopped posting node
//     status.") and gets the node.kubernetes.io/unreachable:NoExecute
//     taint; its Pods are marked not Ready, so that Endpoints drop them.
//     A node whose agent reports Ready=False gets the not-ready taint.
//   - Eviction. Once a node has not been Ready for the eviction timeout
//     (60 s; a Pod's toleration of the taint may say otherwise), its Pods
//     are deleted — at once (grace period 0) when the node is unreachable,
//     since no agent will confirm — so that their owners replace them on
//     other nodes. When no node at all is Ready, nothing is evicted: the
//     fault is more likely the controller's own view than every node.
//   - Pod CIDRs. Each registered node without spec.podCIDR gets the lowest
//     free /24 of the cluster CIDR. Every allocation is claimed first in
//     etcd (a create-if-absent transaction), so that no two nodes ever get
//     the same CIDR, even from two servers; the used set is rebuilt from the
//     Nodes and the claims, so a restart changes nothing.
//
// Time is read from a Clock, so that tests drive the timeouts with a fake one.
package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/cache"
	"kubelite/api/client/workqueue"
	"kubelite/controller"
)

// Defaults of Config, Kubernetes' own.
const (
	DefaultClusterCIDR            = "10.244.0.0/16"
	DefaultNodeCIDRMaskSize       = 24
	DefaultNodeMonitorGracePeriod = 40 * time.Second
	DefaultPodEvictionTimeout     = 60 * time.Second
	DefaultNodeMonitorPeriod      = 5 * time.Second
)

// ControllerName is the component named in its Events.
const ControllerName = "node-controller"

// Config tunes the controller. The zero value is usable.
type Config struct {
	// ClusterCIDR is cut into per-node pod CIDRs (DefaultClusterCIDR).
	ClusterCIDR string
	// NodeCIDRMaskSize is the size of each node's pod CIDR (DefaultNodeCIDRMaskSize).
	NodeCIDRMaskSize int
	// NodeMonitorGracePeriod is how long a node may be silent before it is
	// marked Unknown (DefaultNodeMonitorGracePeriod).
	NodeMonitorGracePeriod time.Duration
	// PodEvictionTimeout is how long a node may be not Ready before its Pods
	// are evicted (DefaultPodEvictionTimeout).
	PodEvictionTimeout time.Duration
	// NodeMonitorPeriod is how often every node is looked at, since silence
	// produces no watch event (DefaultNodeMonitorPeriod).
	NodeMonitorPeriod time.Duration
	// Etcd holds the pod CIDR claims. Without it claims are kept in memory,
	// which is race-free only within one server.
	Etcd *clientv3.Client
	// Clock measures the timeouts (default: the real time).
	Clock  Clock
	Logger *slog.Logger
}

// Controller is the node lifecycle controller.
type Controller struct {
	apiClient *client.Client
	nodes     cache.Lister[*api.Node]
	leases    cache.Lister[*api.Lease]
	pods      cache.Lister[*api.Pod]
	synced    []cache.Syncer
	recorder  controller.EventRecorder
	queue     *workqueue.Queue
	cfg       Config
	cidrs     cidrRange
	cidrErr   error // a bad ClusterCIDR: allocation is off and says why
	claims    claimStore
	logger    *slog.Logger

	mu     sync.Mutex
	health map[string]*nodeHealth // by node name
	// claimed remembers, by node, the pod CIDR whose claim this controller
	// has confirmed, so that the periodic look at every node costs no etcd
	// round trip.
	claimed map[string]string
}

// nodeHealth is what the controller has observed of one node, on its own clock.
type nodeHealth struct {
	heartbeat     string    // the last heartbeat seen (heartbeatOf)
	lastHeartbeat time.Time // when it changed
	notReadySince time.Time // when the node was first seen not Ready; zero while Ready
}

// New builds the controller and registers its handlers; call it before the
// informers run.
func New(c *client.Client, inf *controller.Informers, rec controller.EventRecorder, cfg Config) *Controller {
	if cfg.ClusterCIDR == "" {
		cfg.ClusterCIDR = DefaultClusterCIDR
	}
	if cfg.NodeCIDRMaskSize == 0 {
		cfg.NodeCIDRMaskSize = DefaultNodeCIDRMaskSize
	}
	if cfg.NodeMonitorGracePeriod <= 0 {
		cfg.NodeMonitorGracePeriod = DefaultNodeMonitorGracePeriod
	}
	if cfg.PodEvictionTimeout <= 0 {
		cfg.PodEvictionTimeout = DefaultPodEvictionTimeout
	}
	if cfg.NodeMonitorPeriod <= 0 {
		cfg.NodeMonitorPeriod = DefaultNodeMonitorPeriod
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	logger := controller.Logger(cfg.Logger, ControllerName)
	ctrl := &Controller{
		apiClient: c,
		nodes:     inf.Nodes,
		leases:    inf.Leases,
		pods:      inf.Pods,
		synced:    []cache.Syncer{inf.Nodes, inf.Leases, inf.Pods},
		recorder:  rec,
		queue:     workqueue.New(workqueue.WithLogger(logger)),
		cfg:       cfg,
		logger:    logger,
		health:    map[string]*nodeHealth{},
		claimed:   map[string]string{},
	}
	ctrl.cidrs, ctrl.cidrErr = parseCIDRRange(cfg.ClusterCIDR, cfg.NodeCIDRMaskSize)
	if cfg.Etcd != nil {
		ctrl.claims = &etcdClaims{client: cfg.Etcd, now: cfg.Clock.Now}
	} else {
		ctrl.claims = newMemoryClaims()
	}
	enqueueNode := func(node *api.Node) { ctrl.queue.Add(node.Name) }
	inf.Nodes.AddHandler(cache.OnChange(enqueueNode))
	// A node's Lease in kube-node-lease has the node's name.
	enqueueLease := func(lease *api.Lease) { ctrl.queue.Add(lease.Name) }
	inf.Leases.AddHandler(cache.Handler[*api.Lease]{
		OnAdd:    enqueueLease,
		OnUpdate: func(_, lease *api.Lease) { enqueueLease(lease) },
	})
	return ctrl
}

// Run waits for the caches, releases the pod CIDR claims of nodes that are
// gone, then reconciles until ctx ends, looking at every node each
// NodeMonitorPeriod.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.logger.Info("starting", "workers", workers, "clusterCIDR", c.cfg.ClusterCIDR,
		"gracePeriod", c.cfg.NodeMonitorGracePeriod, "evictionTimeout", c.cfg.PodEvictionTimeout)
	defer c.logger.Info("stopped")
	if c.cidrErr != nil {
		c.logger.Error("pod CIDR allocation is off", "err", c.cidrErr)
	}
	if !cache.WaitForCacheSync(ctx, c.synced...) {
		return
	}
	if err := c.releaseStaleClaims(ctx); err != nil {
		c.logger.Warn("releasing the pod CIDR claims of deleted nodes failed", "err", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.monitor(ctx) })
	c.queue.Run(ctx, workers, c.sync)
	wg.Wait()
}

// monitor queues every node each NodeMonitorPeriod: silence is what the
// controller looks for, and silence makes no watch event.
func (c *Controller) monitor(ctx context.Context) {
	ticker := time.NewTicker(c.cfg.NodeMonitorPeriod)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			for _, node := range c.nodes.List("") {
				c.queue.Add(node.Name)
			}
		}
	}
}

// sync looks after one node.
func (c *Controller) sync(ctx context.Context, name string) error {
	node, ok := c.nodes.Get("", name)
	if !ok {
		return c.nodeGone(ctx, name)
	}
	if wrote, err := c.ensurePodCIDR(ctx, node); err != nil || wrote {
		return err // a written node comes back through the watch
	}
	now := c.cfg.Clock.Now()
	lease, _ := c.leases.Get(api.NamespaceNodeLease, name)
	health := c.observe(name, heartbeatOf(node, lease), now)

	if now.Sub(health.lastHeartbeat) > c.cfg.NodeMonitorGracePeriod && readyStatus(node) != api.ConditionUnknown {
		updated, err := c.markNodeUnknown(ctx, node, now)
		if err != nil {
			return err
		}
		node = updated
	}
	ready := readyStatus(node)
	if err := c.ensureTaints(ctx, node, ready, now); err != nil {
		return err
	}
	if ready == api.ConditionTrue {
		c.setNotReadySince(name, time.Time{})
		return nil
	}
	since := c.setNotReadySince(name, now)
	if ready == api.ConditionUnknown {
		if err := c.markPodsNotReady(ctx, node, now); err != nil {
			return err
		}
	}
	return c.evictPods(ctx, node, ready, now.Sub(since))
}

// observe records a heartbeat seen at now, if it is a new one, and returns
// the node's health record (a copy).
func (c *Controller) observe(name, heartbeat string, now time.Time) nodeHealth {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.health[name]
	if !ok {
		// First sight (or a new leader): the grace period starts now.
		h = &nodeHealth{heartbeat: heartbeat, lastHeartbeat: now}
		c.health[name] = h
	}
	if h.heartbeat != heartbeat {
		h.heartbeat, h.lastHeartbeat = heartbeat, now
	}
	return *h
}

// setNotReadySince records since when the node is not Ready (zero: it is)
// and returns that time; an earlier record is kept.
func (c *Controller) setNotReadySince(name string, since time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.health[name]
	if !ok {
		return since
	}
	if since.IsZero() || h.notReadySince.IsZero() {
		h.notReadySince = since
	}
	return h.notReadySince
}

// markNodeUnknown reports for a silent node that nobody knows its state.
func (c *Controller) markNodeUnknown(ctx context.Context, node *api.Node, now time.Time) (*api.Node, error) {
	next := api.DeepCopy(node)
	if !markUnknown(next, now) {
		return node, nil
	}
	updated, err := client.For[api.Node](c.apiClient, "").UpdateStatus(ctx, next)
	if err != nil {
		return nil, fmt.Errorf("marking node %s Unknown: %w", node.Name, err)
	}
	c.logger.Warn("node stopped posting status; marked Unknown", "node", node.Name,
		"silentFor", c.cfg.NodeMonitorGracePeriod)
	c.recorder.Event(updated, api.EventNormal, "NodeNotReady", fmt.Sprintf("Node %s status is now: NodeNotReady", node.Name))
	return updated, nil
}

// ensureTaints puts the NoExecute taint matching the Ready status on the node.
func (c *Controller) ensureTaints(ctx context.Context, node *api.Node, ready string, now time.Time) error {
	taints, changed := desiredTaints(node.Spec.Taints, ready, now)
	if !changed {
		return nil
	}
	next := api.DeepCopy(node)
	next.Spec.Taints = taints
	if _, err := client.For[api.Node](c.apiClient, "").Update(ctx, next); err != nil {
		return fmt.Errorf("updating the taints of node %s: %w", node.Name, err)
	}
	c.logger.Info("updated node taints", "node", node.Name, "ready", ready, "taints", len(taints))
	return nil
}

// podsOn returns the cached Pods bound to the node.
func (c *Controller) podsOn(node string) []*api.Pod {
	return c.pods.ListSelector("", func(p *api.Pod) bool { return p.Spec.NodeName == node })
}

// markPodsNotReady withdraws the readiness of the Pods of an unreachable
// node, as its agent can no longer vouch for them.
func (c *Controller) markPodsNotReady(ctx context.Context, node *api.Node, now time.Time) error {
	var errs []error
	for _, pod := range c.podsOn(node.Name) {
		if isTerminal(pod) {
			continue
		}
		next := api.DeepCopy(pod)
		if !markPodNotReady(next, now) {
			continue
		}
		if _, err := client.For[api.Pod](c.apiClient, pod.Namespace).UpdateStatus(ctx, next); err != nil && !api.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("marking pod %s not ready: %w", cache.Key(pod), err))
			continue
		}
		c.recorder.Event(pod, api.EventWarning, "NodeNotReady", "Node is not ready")
	}
	return errors.Join(errs...)
}

// evictPods deletes the Pods of a node that has not been Ready for
// notReadyFor, each once its eviction delay has passed.
func (c *Controller) evictPods(ctx context.Context, node *api.Node, ready string, notReadyFor time.Duration) error {
	if !c.anyNodeReady() {
		c.logger.Debug("no node is Ready; not evicting", "node", node.Name)
		return nil
	}
	taint := TaintNotReady
	var opts client.DeleteOptions
	if ready == api.ConditionUnknown {
		taint = TaintUnreachable
		// No agent will confirm the Pods stopped: delete them outright.
		opts.GracePeriodSeconds = api.Ptr(int64(0))
	}
	var errs []error
	for _, pod := range c.podsOn(node.Name) {
		delay, evicts := evictionDelay(pod, taint, c.cfg.PodEvictionTimeout)
		if !evicts || notReadyFor < delay {
			continue
		}
		if pod.DeletionTimestamp != nil && opts.GracePeriodSeconds == nil {
			continue // already stopping, and its agent is alive to finish
		}
		err := client.For[api.Pod](c.apiClient, pod.Namespace).Delete(ctx, pod.Name, opts)
		if err != nil && !api.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("evicting pod %s: %w", cache.Key(pod), err))
			continue
		}
		c.logger.Info("evicted pod from a node that is not ready", "pod", cache.Key(pod), "node", node.Name, "notReadyFor", notReadyFor)
		c.recorder.Event(pod, api.EventNormal, "TaintManagerEviction", fmt.Sprintf("Marking for deletion Pod %s", cache.Key(pod)))
	}
	return errors.Join(errs...)
}

func (c *Controller) anyNodeReady() bool {
	return len(c.nodes.ListSelector("", func(n *api.Node) bool { return n.IsReady() })) > 0
}

// nodeGone cleans up after a deleted node: its health record, its pod CIDR
// claim, and the Pods still bound to it, which no agent will ever stop
// (Kubernetes' pod garbage collector deletes those).
func (c *Controller) nodeGone(ctx context.Context, name string) error {
	c.mu.Lock()
	delete(c.health, name)
	delete(c.claimed, name)
	c.mu.Unlock()
	if err := c.releaseClaimsOf(ctx, name); err != nil {
		return err
	}
	orphans := c.podsOn(name)
	if len(orphans) == 0 {
		return nil
	}
	// The cache may lag a node registered again under that name: ask.
	if _, err := client.For[api.Node](c.apiClient, "").Get(ctx, name); !api.IsNotFound(err) {
		return err // nil: it exists after all
	}
	var errs []error
	for _, pod := range orphans {
		err := client.For[api.Pod](c.apiClient, pod.Namespace).Delete(ctx, pod.Name, client.DeleteOptions{GracePeriodSeconds: api.Ptr(int64(0))})
		if err != nil && !api.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting pod %s of deleted node %s: %w", cache.Key(pod), name, err))
			continue
		}
		c.logger.Info("deleted pod bound to a deleted node", "pod", cache.Key(pod), "node", name)
	}
	return errors.Join(errs...)
}

// ensurePodCIDR gives a node without a pod CIDR the lowest free one, and
// makes sure the CIDR of a node that has one is claimed for it. It reports
// whether it wrote the node.
func (c *Controller) ensurePodCIDR(ctx context.Context, node *api.Node) (wrote bool, err error) {
	if c.cidrErr != nil {
		return false, nil
	}
	if node.Spec.PodCIDR != "" {
		return false, c.confirmClaim(ctx, node.Name, node.Spec.PodCIDR)
	}

	claims, err := c.claims.list(ctx)
	if err != nil {
		return false, err
	}
	var cidr string
	for claimed, holder := range claims {
		if holder == node.Name && c.cidrs.contains(claimed) {
			cidr = claimed // claimed before a crash, not yet written to the node
			break
		}
	}
	if cidr == "" {
		used := map[string]bool{}
		for claimed := range claims {
			used[claimed] = true
		}
		for _, n := range c.nodes.List("") {
			used[n.Spec.PodCIDR] = true
		}
		cidr, err = c.cidrs.firstFree(used, func(candidate string) (bool, error) {
			holder, err := c.claims.claim(ctx, candidate, node.Name)
			return holder == node.Name, err
		})
		if errors.Is(err, errRangeFull) {
			c.recorder.Event(node, api.EventWarning, "CIDRNotAvailable",
				fmt.Sprintf("Node %s status is now: CIDRNotAvailable (no free /%d left in %s)", node.Name, c.cfg.NodeCIDRMaskSize, c.cfg.ClusterCIDR))
		}
		if err != nil {
			return false, fmt.Errorf("allocating a pod CIDR for node %s: %w", node.Name, err)
		}
	}
	return true, c.writePodCIDR(ctx, node.Name, cidr)
}

// confirmClaim makes sure the pod CIDR a node has is claimed in its name
// (it registered with one, or an older server allocated it).
func (c *Controller) confirmClaim(ctx context.Context, node, cidr string) error {
	c.mu.Lock()
	confirmed := c.claimed[node] == cidr
	c.mu.Unlock()
	if confirmed {
		return nil
	}
	holder, err := c.claims.claim(ctx, cidr, node)
	if err != nil {
		return err
	}
	if holder != node {
		c.logger.Error("two nodes have the same pod CIDR", "node", node, "other", holder, "podCIDR", cidr)
		return nil
	}
	c.mu.Lock()
	c.claimed[node] = cidr
	c.mu.Unlock()
	return nil
}

// writePodCIDR records cidr in the node's spec, re-reading it on conflicts.
// If the node got another CIDR meanwhile, the claim on cidr is given back.
func (c *Controller) writePodCIDR(ctx context.Context, name, cidr string) error {
	nodes := client.For[api.Node](c.apiClient, "")
	for attempt := 0; ; attempt++ {
		node, err := nodes.Get(ctx, name)
		if api.IsNotFound(err) {
			return c.claims.release(ctx, cidr, name)
		}
		if err != nil {
			return fmt.Errorf("reading node %s: %w", name, err)
		}
		if node.Spec.PodCIDR != "" {
			if node.Spec.PodCIDR != cidr {
				return c.claims.release(ctx, cidr, name)
			}
			return nil
		}
		node.Spec.PodCIDR = cidr
		node.Spec.PodCIDRs = []string{cidr}
		_, err = nodes.Update(ctx, node)
		if err == nil {
			c.logger.Info("allocated pod CIDR", "node", name, "podCIDR", cidr)
			return nil
		}
		if !api.IsConflict(err) || attempt >= 4 {
			return fmt.Errorf("writing pod CIDR %s to node %s: %w", cidr, name, err)
		}
	}
}

// releaseClaimsOf gives back the pod CIDRs claimed for a node.
func (c *Controller) releaseClaimsOf(ctx context.Context, name string) error {
	claims, err := c.claims.list(ctx)
	if err != nil {
		return err
	}
	for cidr, holder := range claims {
		if holder == name {
			if err := c.claims.release(ctx, cidr, name); err != nil {
				return err
			}
			c.logger.Info("released pod CIDR", "node", name, "podCIDR", cidr)
		}
	}
	return nil
}

// releaseStaleClaims gives back the claims of nodes deleted while no
// controller ran.
func (c *Controller) releaseStaleClaims(ctx context.Context) error {
	claims, err := c.claims.list(ctx)
	if err != nil {
		return err
	}
	for cidr, holder := range claims {
		if _, exists := c.nodes.Get("", holder); exists {
			continue
		}
		if err := c.claims.release(ctx, cidr, holder); err != nil {
			return err
		}
		c.logger.Info("released the pod CIDR of a deleted node", "node", holder, "podCIDR", cidr)
	}
	return nil
}
