package dns

import (
	"net/netip"
	"slices"
	"strings"
	"sync"

	"kubelite/api"
	"kubelite/api/client/cache"
)

// Store is everything the DNS server reads about the cluster. Every method
// answers from memory: a query never costs a call to the API server.
// Returned objects are shared with the caches and must not be changed.
type Store interface {
	// HasSynced reports whether the first list of every resource has been
	// loaded. Before that, a missing Service may only be missing from the
	// cache, so the server answers SERVFAIL instead of NXDOMAIN.
	HasSynced() bool
	// Service returns a Service by namespace and name.
	Service(namespace, name string) (*api.Service, bool)
	// Endpoints returns the Endpoints of a Service (same namespace and name).
	Endpoints(namespace, name string) (*api.Endpoints, bool)
	// HasServices reports whether a namespace holds at least one Service,
	// which is what makes "<ns>.svc.<zone>." an existing name.
	HasServices(namespace string) bool
	// ReverseLookup returns the names that own ip: the Services whose cluster
	// IP it is, and the endpoints of headless Services that have it.
	ReverseLookup(ip netip.Addr) []ReverseName
}

// ReverseName is what a PTR record for one IP points at: the Service
// "<Service>.<Namespace>.svc.<zone>." for a cluster IP, or the endpoint
// "<Hostname>.<Service>.<Namespace>.svc.<zone>." for an endpoint IP of a
// headless Service.
type ReverseName struct {
	Namespace string
	Service   string
	Hostname  string // "" for a cluster IP
}

// clusterIPs returns the Service's cluster IPs (both families for a
// dual-stack Service). Headless and ExternalName Services have none.
func clusterIPs(svc *api.Service) []netip.Addr {
	raw := svc.Spec.ClusterIPs
	if len(raw) == 0 && svc.Spec.ClusterIP != "" {
		raw = []string{svc.Spec.ClusterIP}
	}
	var ips []netip.Addr
	for _, s := range raw {
		if ip, err := netip.ParseAddr(s); err == nil { // skips "None"
			ips = append(ips, ip.Unmap())
		}
	}
	return ips
}

func isExternalName(svc *api.Service) bool { return svc.Spec.Type == api.ServiceTypeExternalName }

// endpoint is one address behind a headless Service, as DNS sees it.
type endpoint struct {
	ip netip.Addr
	// hostname is the first label of the endpoint's own name: the
	// address's hostname, or its IP with dashes ("10-244-1-5") when it has
	// none, as CoreDNS names them.
	hostname string
}

// servingEndpoints returns the endpoints that DNS publishes for a Service,
// over all subsets, without duplicates.
func servingEndpoints(svc *api.Service, eps *api.Endpoints) []endpoint {
	if eps == nil {
		return nil
	}
	var out []endpoint
	for _, subset := range eps.Subsets {
		for _, e := range servingAddresses(svc, subset) {
			if !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	return out
}

// servingAddresses returns the endpoints of one subset that DNS publishes:
// the ready ones, and the not-ready ones too when the Service asks for it
// with publishNotReadyAddresses (StatefulSets use that so that their Pods
// find each other before they are ready).
func servingAddresses(svc *api.Service, subset api.EndpointSubset) []endpoint {
	addrs := subset.Addresses
	if svc.Spec.PublishNotReadyAddresses {
		addrs = slices.Concat(addrs, subset.NotReadyAddresses)
	}
	out := make([]endpoint, 0, len(addrs))
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a.IP)
		if err != nil {
			continue
		}
		ip = ip.Unmap()
		e := endpoint{ip: ip, hostname: a.Hostname}
		if e.hostname == "" {
			e.hostname = dashedIP(ip)
		}
		out = append(out, e)
	}
	return out
}

// dashedIP writes an IP as one DNS label: 10.244.1.5 → "10-244-1-5",
// fd00::1 → "fd00--1".
func dashedIP(ip netip.Addr) string {
	s := ip.String()
	if ip.Is4() {
		return strings.ReplaceAll(s, ".", "-")
	}
	return strings.ReplaceAll(s, ":", "-")
}

// parseDashedIP reverses dashedIP.
func parseDashedIP(label string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ".")); err == nil && ip.Is4() {
		return ip, true
	}
	if ip, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ":")); err == nil && ip.Is6() && ip.Zone() == "" {
		return ip.Unmap(), true
	}
	return netip.Addr{}, false
}

// reverseNames lists the PTR records one Service owns: an entry for each
// cluster IP or, for a headless Service, for each serving endpoint.
func reverseNames(svc *api.Service, eps *api.Endpoints) map[netip.Addr][]ReverseName {
	if svc == nil || isExternalName(svc) {
		return nil
	}
	out := make(map[netip.Addr][]ReverseName)
	if svc.IsHeadless() {
		for _, e := range servingEndpoints(svc, eps) {
			out[e.ip] = append(out[e.ip], ReverseName{Namespace: svc.Namespace, Service: svc.Name, Hostname: e.hostname})
		}
		return out
	}
	for _, ip := range clusterIPs(svc) {
		out[ip] = append(out[ip], ReverseName{Namespace: svc.Namespace, Service: svc.Name})
	}
	return out
}

// Informer is the part of a *cache.Informer that InformerStore uses: its
// lister, and a way to hear about changes.
type Informer[PT any] interface {
	cache.Lister[PT]
	AddHandler(cache.Handler[PT])
}

// InformerStore is the Store over the shared Service and Endpoints caches.
// Lookups by name go straight to the caches; the reverse index (IP → names,
// for PTR queries) and the set of namespaces with Services are kept up to
// date from the caches' change handlers.
type InformerStore struct {
	services  Informer[*api.Service]
	endpoints Informer[*api.Endpoints]

	mu sync.RWMutex
	// reverse maps an IP to the names that own it. Slices are replaced,
	// never changed in place, so readers may keep them after unlocking.
	reverse map[netip.Addr][]ReverseName
	// indexed remembers which IPs each Service ("ns/name") put in reverse,
	// so they can be taken out again when it changes.
	indexed map[string][]netip.Addr
	// servicesIn holds the names of the Services in each namespace.
	servicesIn map[string]map[string]struct{}
}

var _ Store = (*InformerStore)(nil)

// NewInformerStore builds a Store over the two caches, e.g.
//
//	services := cache.NewInformer(client.For[api.Service](c, ""), client.ListOptions{}, 0)
//	endpoints := cache.NewInformer(client.For[api.Endpoints](c, ""), client.ListOptions{}, 0)
//	store := dns.NewInformerStore(services, endpoints)
//
// It may be called before or after the informers run.
func NewInformerStore(services Informer[*api.Service], endpoints Informer[*api.Endpoints]) *InformerStore {
	s := &InformerStore{
		services:   services,
		endpoints:  endpoints,
		reverse:    make(map[netip.Addr][]ReverseName),
		indexed:    make(map[string][]netip.Addr),
		servicesIn: make(map[string]map[string]struct{}),
	}
	onService := func(svc *api.Service) { s.reindex(svc.Namespace, svc.Name) }
	services.AddHandler(cache.Handler[*api.Service]{
		OnAdd:    onService,
		OnUpdate: func(_, svc *api.Service) { onService(svc) },
		OnDelete: onService,
	})
	onEndpoints := func(eps *api.Endpoints) { s.reindex(eps.Namespace, eps.Name) }
	endpoints.AddHandler(cache.Handler[*api.Endpoints]{
		OnAdd:    onEndpoints,
		OnUpdate: func(_, eps *api.Endpoints) { onEndpoints(eps) },
		OnDelete: onEndpoints,
	})
	// Handlers only hear about changes after they were added: index what
	// the caches already hold.
	for _, svc := range services.List("") {
		s.reindex(svc.Namespace, svc.Name)
	}
	return s
}

// reindex recomputes what the Service namespace/name contributes to the
// indexes, from the caches' current state. It is level-triggered: it does
// not matter which change called it, or how often. The caches are read
// under s.mu, so whichever of two concurrent calls (one for the Service, one
// for its Endpoints) runs last sees both changes.
func (s *InformerStore) reindex(namespace, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := namespace + "/" + name
	svc, svcExists := s.services.Get(namespace, name)
	eps, _ := s.endpoints.Get(namespace, name)

	if svcExists {
		if s.servicesIn[namespace] == nil {
			s.servicesIn[namespace] = make(map[string]struct{})
		}
		s.servicesIn[namespace][name] = struct{}{}
	} else if names := s.servicesIn[namespace]; names != nil {
		delete(names, name)
		if len(names) == 0 {
			delete(s.servicesIn, namespace)
		}
	}

	for _, ip := range s.indexed[key] {
		kept := slices.DeleteFunc(slices.Clone(s.reverse[ip]), func(n ReverseName) bool {
			return n.Namespace == namespace && n.Service == name
		})
		if len(kept) == 0 {
			delete(s.reverse, ip)
		} else {
			s.reverse[ip] = kept
		}
	}
	delete(s.indexed, key)

	if !svcExists {
		return
	}
	for ip, names := range reverseNames(svc, eps) {
		s.reverse[ip] = append(slices.Clip(s.reverse[ip]), names...)
		s.indexed[key] = append(s.indexed[key], ip)
	}
}

// HasSynced implements Store.
func (s *InformerStore) HasSynced() bool {
	return s.services.HasSynced() && s.endpoints.HasSynced()
}

// Service implements Store.
func (s *InformerStore) Service(namespace, name string) (*api.Service, bool) {
	return s.services.Get(namespace, name)
}

// Endpoints implements Store.
func (s *InformerStore) Endpoints(namespace, name string) (*api.Endpoints, bool) {
	return s.endpoints.Get(namespace, name)
}

// HasServices implements Store.
func (s *InformerStore) HasServices(namespace string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.servicesIn[namespace]) > 0
}

// ReverseLookup implements Store.
func (s *InformerStore) ReverseLookup(ip netip.Addr) []ReverseName {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.reverse[ip.Unmap()]
}
