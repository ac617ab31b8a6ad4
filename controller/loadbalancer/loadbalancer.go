// Package loadbalancer gives LoadBalancer Services an external address
// from a configured pool, bare-metal style (as MetalLB does): the address
// goes into status.loadBalancer.ingress, where kubectl shows it as the
// EXTERNAL-IP and the service proxy picks it up. Without a pool nothing is
// written, and kubectl shows <pending>, as on a cluster without a cloud.
//
// A Service asking for spec.loadBalancerIP gets it when it is in the pool
// and free; otherwise each gets the lowest free address. An address is
// released when its Service is deleted or stops being a LoadBalancer. The
// addresses in use are rebuilt from the Services' status at start, so a
// restart (or a new leader) hands out nothing twice.
package loadbalancer

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/cache"
	"kubelite/api/client/workqueue"
	"kubelite/controller"
)

// ControllerName is the component named in its Events, Kubernetes' name
// for the controller that runs load balancers.
const ControllerName = "service-controller"

// IPModeVIP says the address is a virtual IP that nodes answer for.
const IPModeVIP = "VIP"

// Config tunes the controller.
type Config struct {
	// Pool is the address pool (see Pool); empty leaves LoadBalancer
	// Services pending.
	Pool   string
	Logger *slog.Logger
}

// Controller is the load balancer address controller.
type Controller struct {
	apiClient *client.Client
	services  cache.Lister[*api.Service]
	synced    []cache.Syncer
	recorder  controller.EventRecorder
	queue     *workqueue.Queue
	pool      *Pool // nil: no pool
	poolErr   error
	logger    *slog.Logger

	mu sync.Mutex
	// allocated maps each address in use to its Service's key. An address
	// is recorded before its Service's status is written, so two workers
	// never pick the same one.
	allocated map[netip.Addr]string
}

// New builds the controller and registers its handlers; call it before the
// informers run. A bad pool is reported by Run.
func New(c *client.Client, inf *controller.Informers, rec controller.EventRecorder, cfg Config) *Controller {
	logger := controller.Logger(cfg.Logger, ControllerName)
	ctrl := &Controller{
		apiClient: c,
		services:  inf.Services,
		synced:    []cache.Syncer{inf.Services},
		recorder:  rec,
		queue:     workqueue.New(workqueue.WithLogger(logger)),
		logger:    logger,
		allocated: map[netip.Addr]string{},
	}
	if cfg.Pool != "" {
		ctrl.pool, ctrl.poolErr = ParsePool(cfg.Pool)
	}
	enqueue := func(svc *api.Service) { ctrl.queue.Add(cache.Key(svc)) }
	inf.Services.AddHandler(cache.OnChange(enqueue))
	return ctrl
}

// Run rebuilds the addresses in use from the Services, then allocates and
// releases until ctx ends. Without a pool it does nothing.
func (c *Controller) Run(ctx context.Context, workers int) {
	switch {
	case c.poolErr != nil:
		c.logger.Error("not allocating load balancer addresses", "err", c.poolErr)
		return
	case c.pool == nil:
		c.logger.Info("no load balancer pool configured; LoadBalancer services stay pending")
		return
	}
	c.logger.Info("starting", "workers", workers, "pool", c.pool)
	defer c.logger.Info("stopped")
	if !cache.WaitForCacheSync(ctx, c.synced...) {
		return
	}
	c.rebuildAllocations()
	c.queue.Run(ctx, workers, c.sync)
}

// rebuildAllocations records the pool addresses the Services' status
// holds. Of two Services claiming one address, the older keeps it; the
// other is given a new one when synced.
func (c *Controller) rebuildAllocations() {
	services := c.services.ListSelector("", isLoadBalancer)
	slices.SortFunc(services, func(a, b *api.Service) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), strings.Compare(cache.Key(a), cache.Key(b)))
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, svc := range services {
		for _, ip := range c.poolAddresses(svc) {
			if _, taken := c.allocated[ip]; !taken {
				c.allocated[ip] = cache.Key(svc)
			}
		}
	}
	c.logger.Info("rebuilt load balancer allocations", "inUse", len(c.allocated))
}

func isLoadBalancer(svc *api.Service) bool { return svc.Spec.Type == api.ServiceTypeLoadBalancer }

// poolAddresses returns the addresses of svc's status that are in the pool.
func (c *Controller) poolAddresses(svc *api.Service) []netip.Addr {
	var ips []netip.Addr
	for _, ingress := range svc.Status.LoadBalancer.Ingress {
		if ip, err := netip.ParseAddr(ingress.IP); err == nil && c.pool.Contains(ip) {
			ips = append(ips, ip)
		}
	}
	return ips
}

// sync gives the Service key an address, keeps the one it has, or releases it.
func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name := cache.SplitKey(key)
	svc, exists := c.services.Get(namespace, name)
	if !exists || !isLoadBalancer(svc) {
		if c.release(key) {
			c.enqueuePending()
		}
		if exists && len(c.poolAddresses(svc)) > 0 {
			return c.clearStatus(ctx, svc)
		}
		return nil
	}

	if ip, ok := c.keep(key, svc); ok {
		if len(svc.Status.LoadBalancer.Ingress) == 1 && svc.Status.LoadBalancer.Ingress[0].IPMode == IPModeVIP {
			return nil
		}
		return c.writeStatus(ctx, svc, ip) // tidy: only our address, with its mode
	}
	ip, err := c.allocate(key, svc.Spec.LoadBalancerIP)
	if err != nil {
		c.logger.Warn("cannot allocate a load balancer address", "service", key, "err", err)
		c.recorder.Event(svc, api.EventWarning, "AllocationFailed", fmt.Sprintf("Failed to allocate IP for %q: %v", key, err))
		return nil // retried when an address is released or the Service changes
	}
	if err := c.writeStatus(ctx, svc, ip); err != nil {
		c.releaseAddress(ip, key)
		return err
	}
	c.logger.Info("assigned load balancer address", "service", key, "ip", ip)
	c.recorder.Event(svc, api.EventNormal, "IPAllocated", fmt.Sprintf("Assigned IP [%q]", ip.String()))
	return nil
}

// keep reports whether svc may keep the pool address its status shows: it
// is the one asked for (if any), and no other Service holds it. It then
// records it as svc's, and releases anything else svc held.
func (c *Controller) keep(key string, svc *api.Service) (netip.Addr, bool) {
	current := c.poolAddresses(svc)
	if len(current) == 0 {
		return netip.Addr{}, false
	}
	ip := current[0]
	if requested := svc.Spec.LoadBalancerIP; requested != "" && requested != ip.String() {
		return netip.Addr{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if holder, taken := c.allocated[ip]; taken && holder != key {
		return netip.Addr{}, false
	}
	c.releaseLocked(key)
	c.allocated[ip] = key
	return ip, true
}

// allocate picks an address for the Service key: the requested one, or the
// lowest free one, and records it (releasing what key held before).
func (c *Controller) allocate(key, requested string) (netip.Addr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	free := func(ip netip.Addr) bool {
		holder, taken := c.allocated[ip]
		return !taken || holder == key
	}
	var ip netip.Addr
	if requested != "" {
		var err error
		ip, err = netip.ParseAddr(requested)
		switch {
		case err != nil:
			return netip.Addr{}, fmt.Errorf("spec.loadBalancerIP %q is not an IP address", requested)
		case !c.pool.Contains(ip):
			return netip.Addr{}, fmt.Errorf("requested IP %s is not in the pool %s", ip, c.pool)
		case !free(ip):
			return netip.Addr{}, fmt.Errorf("requested IP %s is already in use by %s", ip, c.allocated[ip])
		}
	} else {
		var ok bool
		if ip, ok = c.pool.First(free); !ok {
			return netip.Addr{}, fmt.Errorf("no available IPs in pool %s", c.pool)
		}
	}
	c.releaseLocked(key)
	c.allocated[ip] = key
	return ip, nil
}

// release forgets every address key holds; it reports whether there was any.
func (c *Controller) release(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.releaseLocked(key)
}

func (c *Controller) releaseLocked(key string) bool {
	released := false
	for ip, holder := range c.allocated {
		if holder == key {
			delete(c.allocated, ip)
			released = true
		}
	}
	return released
}

// releaseAddress forgets ip if key holds it (a status write failed).
func (c *Controller) releaseAddress(ip netip.Addr, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.allocated[ip] == key {
		delete(c.allocated, ip)
	}
}

// enqueuePending queues the LoadBalancer Services still waiting for an
// address: one was just released.
func (c *Controller) enqueuePending() {
	for _, svc := range c.services.ListSelector("", isLoadBalancer) {
		if len(svc.Status.LoadBalancer.Ingress) == 0 {
			c.queue.Add(cache.Key(svc))
		}
	}
}

// writeStatus sets the Service's ingress to ip.
func (c *Controller) writeStatus(ctx context.Context, svc *api.Service, ip netip.Addr) error {
	next := api.DeepCopy(svc)
	next.Status.LoadBalancer.Ingress = []api.LoadBalancerIngress{{IP: ip.String(), IPMode: IPModeVIP}}
	if _, err := client.For[api.Service](c.apiClient, svc.Namespace).UpdateStatus(ctx, next); err != nil {
		return fmt.Errorf("writing the load balancer status of %s: %w", cache.Key(svc), err)
	}
	return nil
}

// clearStatus removes the pool addresses from the status of a Service that
// is no longer a LoadBalancer.
func (c *Controller) clearStatus(ctx context.Context, svc *api.Service) error {
	next := api.DeepCopy(svc)
	next.Status.LoadBalancer.Ingress = slices.DeleteFunc(next.Status.LoadBalancer.Ingress, func(in api.LoadBalancerIngress) bool {
		ip, err := netip.ParseAddr(in.IP)
		return err == nil && c.pool.Contains(ip)
	})
	if _, err := client.For[api.Service](c.apiClient, svc.Namespace).UpdateStatus(ctx, next); err != nil {
		return fmt.Errorf("clearing the load balancer status of %s: %w", cache.Key(svc), err)
	}
	c.logger.Info("released load balancer address", "service", cache.Key(svc))
	return nil
}
