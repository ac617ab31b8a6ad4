package proxy

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"kubelite/api"
)

// DNSServiceName is the Service that pods' resolv.conf points at. kubelite
// runs no DNS pods: every node agent embeds a DNS server, and the proxy
// sends this Service's port 53 to it (see RuleInput.LocalDNS).
const DNSServiceName = "kube-system/kube-dns"

// dnsPort is the port of DNSServiceName that goes to the local DNS server,
// over UDP and TCP alike.
const dnsPort = 53

// RuleInput is everything the rules depend on. BuildRules reads it and
// changes nothing.
type RuleInput struct {
	Services  []*api.Service
	Endpoints []*api.Endpoints

	// NodeName is this node's name. Endpoints whose nodeName equals it are
	// local, which matters for the traffic policies "Local".
	NodeName string
	// ClusterCIDR is the pod network (10.244.0.0/16). Traffic to a cluster
	// IP from outside it is masqueraded so that the replies come back
	// through this node. The zero Prefix leaves that rule out, as kube-proxy
	// does without --cluster-cidr.
	ClusterCIDR netip.Prefix
	// LocalDNS is where this node's DNS server listens. When valid, port 53
	// (UDP and TCP) of DNSServiceName is given this one endpoint, so that
	// the rules read as if kube-dns had a pod here.
	LocalDNS netip.AddrPort
}

// servicePort is one port of one Service with everything the rules need:
// what kube-proxy calls a ServicePort (its serviceInfo) together with the
// port's ready endpoints.
type servicePort struct {
	name      ServicePortName
	protocol  string // lower case, as iptables writes it: "tcp", "udp", "sctp"
	clusterIP netip.Addr
	port      int32
	nodePort  int32 // 0: none

	loadBalancerIPs []netip.Addr // from the Service's status
	externalIPs     []netip.Addr // spec.externalIPs

	// affinitySeconds > 0 sends a client back to the endpoint it used
	// last, for that long (sessionAffinity: ClientIP).
	affinitySeconds int32
	// internalLocal (internalTrafficPolicy: Local) sends cluster IP
	// traffic to this node's endpoints only; externalLocal
	// (externalTrafficPolicy: Local) does so for node ports and
	// load-balancer IPs, which also keeps the client's source address.
	internalLocal bool
	externalLocal bool

	endpoints []endpoint // ready endpoints, sorted by address
}

// endpoint is one ready address:port behind a Service port.
type endpoint struct {
	addr  netip.AddrPort
	local bool // runs on this node
}

func (p *servicePort) localEndpoints() []endpoint {
	var local []endpoint
	for _, ep := range p.endpoints {
		if ep.local {
			local = append(local, ep)
		}
	}
	return local
}

// externallyReachable reports whether the port also answers on addresses
// other than its cluster IP: a node port, load-balancer or external IPs.
func (p *servicePort) externallyReachable() bool {
	return p.nodePort != 0 || len(p.loadBalancerIPs) > 0 || len(p.externalIPs) > 0
}

// portKey identifies a Service port across syncs: its name and protocol.
type portKey struct {
	name     ServicePortName
	protocol string
}

func (p *servicePort) key() portKey { return portKey{p.name, p.protocol} }

// equal reports whether two ports would get the same rules.
func (p *servicePort) equal(q *servicePort) bool {
	return p.name == q.name && p.protocol == q.protocol && p.clusterIP == q.clusterIP &&
		p.port == q.port && p.nodePort == q.nodePort &&
		slices.Equal(p.loadBalancerIPs, q.loadBalancerIPs) && slices.Equal(p.externalIPs, q.externalIPs) &&
		p.affinitySeconds == q.affinitySeconds && p.internalLocal == q.internalLocal && p.externalLocal == q.externalLocal &&
		slices.Equal(p.endpoints, q.endpoints)
}

// servicePorts turns Services and Endpoints into the ports that need rules,
// sorted by name, so that the same input always gives the same text.
// Headless and ExternalName Services have no virtual IP and need none.
func servicePorts(in RuleInput) []servicePort {
	ports, _ := servicePortsMemo(in, nil)
	return ports
}

// portsMemo remembers each Service's ports from one sync to the next, by
// the resourceVersions of the Service and of its Endpoints: the caches
// hand out a new object, with a new resourceVersion, whenever one changes.
// At 10,000 Services, working every port out again costs 20 ms, a fifth of
// an nftables-mode sync. It is only valid for one NodeName and LocalDNS,
// which never change in a Proxier.
type portsMemo map[string]memoizedPorts

type memoizedPorts struct {
	serviceVersion, endpointsVersion string
	ports                            []servicePort
}

// servicePortsMemo is servicePorts, reusing memo's ports for the Services
// that have not changed (nil: none). It returns the memo for the next call.
func servicePortsMemo(in RuleInput, memo portsMemo) ([]servicePort, portsMemo) {
	endpointsByService := make(map[string]*api.Endpoints, len(in.Endpoints))
	for _, eps := range in.Endpoints {
		endpointsByService[eps.Namespace+"/"+eps.Name] = eps
	}

	next := make(portsMemo, len(in.Services))
	var ports []servicePort
	for _, svc := range in.Services {
		key := svc.Namespace + "/" + svc.Name
		eps := endpointsByService[key]
		versions := memoizedPorts{serviceVersion: svc.ResourceVersion}
		if eps != nil {
			versions.endpointsVersion = eps.ResourceVersion
		}
		// Objects without a resourceVersion (built by hand, not stored)
		// are never taken for unchanged.
		memoizable := versions.serviceVersion != "" && (eps == nil || versions.endpointsVersion != "")
		if old, ok := memo[key]; ok && memoizable &&
			old.serviceVersion == versions.serviceVersion && old.endpointsVersion == versions.endpointsVersion {
			ports = append(ports, old.ports...)
			next[key] = old
			continue
		}
		versions.ports = svcPorts(in, svc, eps)
		ports = append(ports, versions.ports...)
		if memoizable {
			next[key] = versions
		}
	}
	// Field by field: building "ns/name:port" strings for every
	// comparison would cost more than the rest of this function.
	slices.SortFunc(ports, func(a, b servicePort) int {
		return cmp.Or(cmp.Compare(a.name.Namespace, b.name.Namespace), cmp.Compare(a.name.Name, b.name.Name),
			cmp.Compare(a.name.Port, b.name.Port), cmp.Compare(a.protocol, b.protocol))
	})
	return ports, next
}

// svcPorts are the ports of one Service that need rules.
func svcPorts(in RuleInput, svc *api.Service, eps *api.Endpoints) []servicePort {
	if svc.Spec.Type == api.ServiceTypeExternalName || svc.IsHeadless() {
		return nil
	}
	clusterIP, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !clusterIP.Is4() {
		return nil // not allocated yet; kubelite's service network is IPv4
	}
	var ports []servicePort
	for _, sp := range svc.Spec.Ports {
		port := newServicePort(svc, sp, clusterIP)
		if svc.Namespace+"/"+svc.Name == DNSServiceName && sp.Port == dnsPort && in.LocalDNS.IsValid() {
			port.endpoints = []endpoint{{addr: in.LocalDNS, local: true}}
		} else {
			port.endpoints = readyEndpoints(eps, sp, in.NodeName)
		}
		ports = append(ports, port)
	}
	return ports
}

func newServicePort(svc *api.Service, sp api.ServicePort, clusterIP netip.Addr) servicePort {
	spec := &svc.Spec
	port := servicePort{
		name:      ServicePortName{Namespace: svc.Namespace, Name: svc.Name, Port: sp.Name},
		protocol:  strings.ToLower(cmp.Or(sp.Protocol, api.ProtocolTCP)),
		clusterIP: clusterIP,
		port:      sp.Port,
	}
	external := spec.Type == api.ServiceTypeNodePort || spec.Type == api.ServiceTypeLoadBalancer
	if external {
		port.nodePort = sp.NodePort
	}
	if spec.Type == api.ServiceTypeLoadBalancer {
		for _, ingress := range svc.Status.LoadBalancer.Ingress {
			if ip, err := netip.ParseAddr(ingress.IP); err == nil && ip.Is4() {
				port.loadBalancerIPs = append(port.loadBalancerIPs, ip)
			}
		}
	}
	for _, s := range spec.ExternalIPs {
		if ip, err := netip.ParseAddr(s); err == nil && ip.Is4() {
			port.externalIPs = append(port.externalIPs, ip)
		}
	}
	if spec.SessionAffinity == api.SessionAffinityClientIP {
		port.affinitySeconds = api.DefaultClientIPAffinitySeconds
		if c := spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			port.affinitySeconds = *c.ClientIP.TimeoutSeconds
		}
	}
	port.internalLocal = spec.InternalTrafficPolicy != nil && *spec.InternalTrafficPolicy == api.TrafficPolicyLocal
	port.externalLocal = port.externallyReachable() && spec.ExternalTrafficPolicy == api.TrafficPolicyLocal
	return port
}

// readyEndpoints returns the ready addresses of eps for the Service port
// sp: those in subsets' "addresses" (never "notReadyAddresses") whose
// subset has a port of the same name and protocol. The Endpoints controller
// already resolved the target port, named or numbered, into that port.
func readyEndpoints(eps *api.Endpoints, sp api.ServicePort, nodeName string) []endpoint {
	if eps == nil {
		return nil
	}
	protocol := cmp.Or(sp.Protocol, api.ProtocolTCP)
	seen := make(map[netip.AddrPort]bool)
	var out []endpoint
	for _, subset := range eps.Subsets {
		for _, port := range subset.Ports {
			if port.Name != sp.Name || cmp.Or(port.Protocol, api.ProtocolTCP) != protocol || port.Port <= 0 || port.Port > 65535 {
				continue
			}
			for _, address := range subset.Addresses {
				ip, err := netip.ParseAddr(address.IP)
				if err != nil || !ip.Is4() {
					continue
				}
				addr := netip.AddrPortFrom(ip, uint16(port.Port))
				if seen[addr] {
					continue
				}
				seen[addr] = true
				local := address.NodeName != nil && *address.NodeName == nodeName && nodeName != ""
				out = append(out, endpoint{addr: addr, local: local})
			}
		}
	}
	slices.SortFunc(out, func(a, b endpoint) int { return a.addr.Compare(b.addr) })
	return out
}
