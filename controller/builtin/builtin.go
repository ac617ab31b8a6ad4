// Package builtin keeps the Services every cluster has:
//
//   - default/kubernetes: the API server at the first IP of the service
//     range (10.96.0.1:443 → the API servers' port), with an Endpoints
//     object listing the API servers' addresses, so that Pods reach the API
//     as https://kubernetes.default.svc;
//   - kube-system/kube-dns: the cluster DNS at the tenth IP (10.96.0.10,
//     53/UDP, 53/TCP, 9153/TCP). The DNS server runs inside every node
//     agent; steering 10.96.0.10 to it is the service proxy's business.
//
// A built-in Service that is deleted is created again; one that is changed
// has the fields this controller owns (IP, type, ports, selector, its
// labels) put back, and nothing else touched.
package builtin

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/cache"
	"kubelite/api/client/workqueue"
	"kubelite/controller"
)

// Defaults of Config.
const (
	DefaultServiceCIDR   = "10.96.0.0/12"
	DefaultAPIServerPort = 6443
)

// ControllerName is the component named in its Events.
const ControllerName = "builtin-service-controller"

// Keys of the built-in Services.
const (
	KubernetesKey = api.NamespaceDefault + "/kubernetes"
	KubeDNSKey    = api.NamespaceSystem + "/kube-dns"
)

// Config says where the built-in Services point.
type Config struct {
	// ServiceCIDR is the cluster IP range (DefaultServiceCIDR); the
	// kubernetes Service gets its first address, kube-dns its tenth.
	ServiceCIDR string
	// APIServerAddresses are the addresses the API servers advertise; the
	// kubernetes Endpoints list them all (one entry per server of the
	// cluster). Empty: only the Service is kept.
	APIServerAddresses []string
	// APIServerPort is the API servers' HTTPS port (DefaultAPIServerPort).
	APIServerPort int
	Logger        *slog.Logger
}

// Controller keeps the built-in Services.
type Controller struct {
	apiClient *client.Client
	services  cache.Lister[*api.Service]
	endpoints cache.Lister[*api.Endpoints]
	synced    []cache.Syncer
	recorder  controller.EventRecorder
	queue     *workqueue.Queue
	desired   map[string]*api.Service // by key
	// kubernetesEndpoints is what default/kubernetes's Endpoints must say;
	// nil when no API server address is configured.
	kubernetesEndpoints *api.Endpoints
	configErr           error
	logger              *slog.Logger
}

// New builds the controller and registers its handlers; call it before the
// informers run. A bad ServiceCIDR is reported by Run.
func New(c *client.Client, inf *controller.Informers, rec controller.EventRecorder, cfg Config) *Controller {
	logger := controller.Logger(cfg.Logger, ControllerName)
	ctrl := &Controller{
		apiClient: c,
		services:  inf.Services,
		endpoints: inf.Endpoints,
		synced:    []cache.Syncer{inf.Services, inf.Endpoints},
		recorder:  rec,
		queue:     workqueue.New(workqueue.WithLogger(logger)),
		logger:    logger,
	}
	ctrl.desired, ctrl.kubernetesEndpoints, ctrl.configErr = desiredObjects(cfg)
	enqueue := func(obj api.Object) {
		if key := cache.Key(obj); ctrl.desired[key] != nil {
			ctrl.queue.Add(key)
		}
	}
	inf.Services.AddHandler(cache.Handler[*api.Service]{
		OnAdd:    func(svc *api.Service) { enqueue(svc) },
		OnUpdate: func(_, svc *api.Service) { enqueue(svc) },
		OnDelete: func(svc *api.Service) { enqueue(svc) },
	})
	inf.Endpoints.AddHandler(cache.Handler[*api.Endpoints]{
		OnAdd:    func(ep *api.Endpoints) { enqueue(ep) },
		OnUpdate: func(_, ep *api.Endpoints) { enqueue(ep) },
		OnDelete: func(ep *api.Endpoints) { enqueue(ep) },
	})
	return ctrl
}

// Run waits for the caches, makes sure every built-in Service exists, and
// keeps them until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	if c.configErr != nil {
		c.logger.Error("not keeping the built-in services", "err", c.configErr)
		return
	}
	c.logger.Info("starting", "workers", workers)
	defer c.logger.Info("stopped")
	if !cache.WaitForCacheSync(ctx, c.synced...) {
		return
	}
	for key := range c.desired {
		c.queue.Add(key) // there may be nothing yet to make an event
	}
	c.queue.Run(ctx, workers, c.sync)
}

// desiredObjects builds the built-in Services (by key) and the kubernetes
// Endpoints from the configuration.
func desiredObjects(cfg Config) (map[string]*api.Service, *api.Endpoints, error) {
	serviceRange, err := netip.ParsePrefix(cmp.Or(cfg.ServiceCIDR, DefaultServiceCIDR))
	if err != nil {
		return nil, nil, fmt.Errorf("service CIDR: %w", err)
	}
	kubernetesIP, err := NthIP(serviceRange, 1)
	if err != nil {
		return nil, nil, err
	}
	dnsIP, err := NthIP(serviceRange, 10)
	if err != nil {
		return nil, nil, err
	}
	port := int32(cmp.Or(cfg.APIServerPort, DefaultAPIServerPort))

	kubernetes := &api.Service{
		ObjectMeta: api.ObjectMeta{
			Name:      "kubernetes",
			Namespace: api.NamespaceDefault,
			Labels:    map[string]string{"component": "apiserver", "provider": "kubernetes"},
		},
		Spec: api.ServiceSpec{
			Type:      api.ServiceTypeClusterIP,
			ClusterIP: kubernetesIP.String(),
			Ports: []api.ServicePort{
				{Name: "https", Protocol: api.ProtocolTCP, Port: 443, TargetPort: api.FromInt(port)},
			},
		},
	}
	kubeDNS := &api.Service{
		ObjectMeta: api.ObjectMeta{
			Name:      "kube-dns",
			Namespace: api.NamespaceSystem,
			Labels:    map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "KubeDNS"},
		},
		Spec: api.ServiceSpec{
			Type:      api.ServiceTypeClusterIP,
			ClusterIP: dnsIP.String(),
			Selector:  map[string]string{"k8s-app": "kube-dns"},
			Ports: []api.ServicePort{
				{Name: "dns", Protocol: api.ProtocolUDP, Port: 53, TargetPort: api.FromInt(53)},
				{Name: "dns-tcp", Protocol: api.ProtocolTCP, Port: 53, TargetPort: api.FromInt(53)},
				{Name: "metrics", Protocol: api.ProtocolTCP, Port: 9153, TargetPort: api.FromInt(9153)},
			},
		},
	}
	services := map[string]*api.Service{KubernetesKey: kubernetes, KubeDNSKey: kubeDNS}

	addresses, err := apiServerAddresses(cfg.APIServerAddresses)
	if err != nil || len(addresses) == 0 {
		return services, nil, err
	}
	endpoints := &api.Endpoints{
		ObjectMeta: api.ObjectMeta{Name: "kubernetes", Namespace: api.NamespaceDefault},
		Subsets: []api.EndpointSubset{{
			Addresses: addresses,
			Ports:     []api.EndpointPort{{Name: "https", Port: port, Protocol: api.ProtocolTCP}},
		}},
	}
	return services, endpoints, nil
}

// apiServerAddresses turns the configured addresses into sorted,
// de-duplicated Endpoints addresses.
func apiServerAddresses(configured []string) ([]api.EndpointAddress, error) {
	var ips []netip.Addr
	for _, s := range configured {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("API server address %q: %w", s, err)
		}
		ips = append(ips, ip)
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	ips = slices.Compact(ips)
	addresses := make([]api.EndpointAddress, len(ips))
	for i, ip := range ips {
		addresses[i] = api.EndpointAddress{IP: ip.String()}
	}
	return addresses, nil
}

// NthIP returns the n-th address of an IPv4 range (the network address is
// the 0th): 10.96.0.1 and 10.96.0.10 for n = 1 and 10 of 10.96.0.0/12.
func NthIP(prefix netip.Prefix, n int) (netip.Addr, error) {
	if !prefix.Addr().Is4() {
		return netip.Addr{}, fmt.Errorf("service CIDR %s: only IPv4 is supported", prefix)
	}
	if size := uint64(1) << (32 - prefix.Bits()); uint64(n) >= size-1 {
		return netip.Addr{}, fmt.Errorf("service CIDR %s has no address number %d", prefix, n)
	}
	b := prefix.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), nil
}

// sync makes one built-in Service (and, for kubernetes, its Endpoints) right.
func (c *Controller) sync(ctx context.Context, key string) error {
	desired := c.desired[key]
	if desired == nil {
		return nil
	}
	if err := c.syncService(ctx, key, desired); err != nil {
		return err
	}
	if key == KubernetesKey && c.kubernetesEndpoints != nil {
		return c.syncEndpoints(ctx, c.kubernetesEndpoints)
	}
	return nil
}

func (c *Controller) syncService(ctx context.Context, key string, desired *api.Service) error {
	services := client.For[api.Service](c.apiClient, desired.Namespace)
	current, exists := c.services.Get(desired.Namespace, desired.Name)
	if !exists {
		created, err := services.Create(ctx, api.DeepCopy(desired))
		if err != nil {
			return fmt.Errorf("creating built-in service %s: %w", key, err)
		}
		c.logger.Info("created built-in service", "service", key, "clusterIP", created.Spec.ClusterIP)
		c.recorder.Event(created, api.EventNormal, "Created", fmt.Sprintf("Created built-in service %s", key))
		return nil
	}
	if current.Spec.ClusterIP != desired.Spec.ClusterIP && current.Spec.ClusterIP != "" {
		// A cluster IP cannot be changed: start over. The delete comes back
		// through the watch, and the next pass creates it right.
		c.logger.Warn("built-in service has the wrong cluster IP; recreating it", "service", key,
			"clusterIP", current.Spec.ClusterIP, "want", desired.Spec.ClusterIP)
		err := services.Delete(ctx, current.Name, client.DeleteOptions{ResourceVersion: current.ResourceVersion})
		if err != nil && !api.IsNotFound(err) {
			return fmt.Errorf("deleting built-in service %s: %w", key, err)
		}
		return nil
	}
	next, changed := repairService(current, desired)
	if !changed {
		return nil
	}
	if _, err := services.Update(ctx, next); err != nil {
		return fmt.Errorf("repairing built-in service %s: %w", key, err)
	}
	c.logger.Info("repaired built-in service", "service", key)
	c.recorder.Event(current, api.EventNormal, "Repaired", fmt.Sprintf("Restored the built-in settings of service %s", key))
	return nil
}

// repairService returns current with the fields this controller owns set
// as desired, and whether that changed anything. Other fields (what
// defaulting adds, annotations, extra labels) are kept.
func repairService(current, desired *api.Service) (*api.Service, bool) {
	next := api.DeepCopy(current)
	changed := false
	for k, v := range desired.Labels {
		if next.Labels[k] != v {
			if next.Labels == nil {
				next.Labels = map[string]string{}
			}
			next.Labels[k] = v
			changed = true
		}
	}
	if next.Spec.Type != desired.Spec.Type {
		next.Spec.Type = desired.Spec.Type
		changed = true
	}
	if next.Spec.ClusterIP == "" {
		next.Spec.ClusterIP = desired.Spec.ClusterIP
		changed = true
	}
	if !maps.Equal(next.Spec.Selector, desired.Spec.Selector) {
		next.Spec.Selector = maps.Clone(desired.Spec.Selector)
		changed = true
	}
	if !samePorts(next.Spec.Ports, desired.Spec.Ports) {
		next.Spec.Ports = slices.Clone(desired.Spec.Ports) // node ports dropped: a ClusterIP Service has none
		changed = true
	}
	return next, changed
}

// samePorts compares the ports a built-in Service owns, node ports included
// (they must be unset).
func samePorts(a, b []api.ServicePort) bool {
	return slices.EqualFunc(a, b, func(x, y api.ServicePort) bool {
		return x.Name == y.Name && cmp.Or(x.Protocol, api.ProtocolTCP) == cmp.Or(y.Protocol, api.ProtocolTCP) &&
			x.Port == y.Port && x.TargetPort == y.TargetPort && x.NodePort == y.NodePort
	})
}

// syncEndpoints makes the kubernetes Endpoints list the API servers.
func (c *Controller) syncEndpoints(ctx context.Context, desired *api.Endpoints) error {
	endpoints := client.For[api.Endpoints](c.apiClient, desired.Namespace)
	key := cache.Key(desired)
	current, exists := c.endpoints.Get(desired.Namespace, desired.Name)
	if !exists {
		if _, err := endpoints.Create(ctx, api.DeepCopy(desired)); err != nil {
			return fmt.Errorf("creating endpoints %s: %w", key, err)
		}
		c.logger.Info("created the API server endpoints", "endpoints", key)
		return nil
	}
	if sameJSON(current.Subsets, desired.Subsets) {
		return nil
	}
	next := api.DeepCopy(current)
	next.Subsets = api.DeepCopy(desired.Subsets)
	if _, err := endpoints.Update(ctx, next); err != nil {
		return fmt.Errorf("updating endpoints %s: %w", key, err)
	}
	c.logger.Info("updated the API server endpoints", "endpoints", key)
	return nil
}

func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
