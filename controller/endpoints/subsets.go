package endpoints

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"kubelite/api"
)

// DesiredSubsets lists the Pods behind svc as Endpoints subsets, as
// Kubernetes' endpoints controller does:
//
//   - a Pod is listed when it has an IP and is neither finished
//     (Succeeded, Failed) nor terminating; with publishNotReadyAddresses a
//     terminating Pod is listed too, as Kubernetes does for peer discovery;
//   - a ready Pod goes under addresses, a not-ready one under
//     notReadyAddresses (publishNotReadyAddresses puts every Pod under addresses);
//   - each Service port's targetPort is a number, or the name of a
//     container port, looked up in each Pod; a Pod without that port is left
//     out of that port;
//   - the (address, port) pairs are packed into one subset per distinct set
//     of ports (RepackSubsets).
//
// pods must already match the Service's selector.
func DesiredSubsets(svc *api.Service, pods []*api.Pod) []api.EndpointSubset {
	publishNotReady := svc.Spec.PublishNotReadyAddresses
	var subsets []api.EndpointSubset
	for _, pod := range pods {
		if !shouldBeListed(pod, publishNotReady) {
			continue
		}
		address := addressOf(pod, svc)
		ready := publishNotReady || pod.IsReady()
		if len(svc.Spec.Ports) == 0 {
			// Only a headless Service may have no ports: it lists bare addresses.
			if svc.IsHeadless() {
				subsets = append(subsets, oneAddressSubset(address, ready, nil))
			}
			continue
		}
		for i := range svc.Spec.Ports {
			port, ok := resolvePort(&svc.Spec.Ports[i], pod)
			if !ok {
				continue
			}
			subsets = append(subsets, oneAddressSubset(address, ready, &port))
		}
	}
	return RepackSubsets(subsets)
}

// shouldBeListed is Kubernetes' ShouldPodBeInEndpoints.
func shouldBeListed(pod *api.Pod, includeTerminating bool) bool {
	switch {
	case pod.Status.Phase == api.PodSucceeded || pod.Status.Phase == api.PodFailed:
		return false
	case podIP(pod) == "":
		return false
	case pod.DeletionTimestamp != nil && !includeTerminating:
		return false
	}
	return true
}

func podIP(pod *api.Pod) string {
	if pod.Status.PodIP != "" {
		return pod.Status.PodIP
	}
	if len(pod.Status.PodIPs) > 0 {
		return pod.Status.PodIPs[0].IP
	}
	return ""
}

// addressOf is the Endpoints address of pod. A Pod whose hostname and
// subdomain name this (headless) Service gets a DNS name through it.
func addressOf(pod *api.Pod, svc *api.Service) api.EndpointAddress {
	address := api.EndpointAddress{
		IP: podIP(pod),
		TargetRef: &api.ObjectReference{
			Kind:      "Pod",
			Namespace: pod.Namespace,
			Name:      pod.Name,
			UID:       pod.UID,
		},
	}
	if pod.Spec.NodeName != "" {
		address.NodeName = api.Ptr(pod.Spec.NodeName)
	}
	if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && pod.Namespace == svc.Namespace {
		address.Hostname = pod.Spec.Hostname
	}
	return address
}

// resolvePort finds the port a Service port reaches on pod. A numeric
// targetPort is taken as is (unset means the Service port); a named one is
// looked up among the Pod's container ports of the same protocol.
func resolvePort(sp *api.ServicePort, pod *api.Pod) (api.EndpointPort, bool) {
	protocol := cmp.Or(sp.Protocol, api.ProtocolTCP)
	port := api.EndpointPort{Name: sp.Name, Protocol: protocol, AppProtocol: sp.AppProtocol}
	switch target := sp.TargetPort; {
	case target.IsString:
		number, ok := findContainerPort(pod, target.StrVal, protocol)
		if !ok {
			return api.EndpointPort{}, false
		}
		port.Port = number
	case target.IntVal != 0:
		port.Port = target.IntVal
	default:
		port.Port = sp.Port
	}
	return port, true
}

// findContainerPort is Kubernetes' podutil.FindPort for a named port.
func findContainerPort(pod *api.Pod, name, protocol string) (int32, bool) {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name && cmp.Or(p.Protocol, api.ProtocolTCP) == protocol {
				return p.ContainerPort, true
			}
		}
	}
	return 0, false
}

func oneAddressSubset(address api.EndpointAddress, ready bool, port *api.EndpointPort) api.EndpointSubset {
	var subset api.EndpointSubset
	if ready {
		subset.Addresses = []api.EndpointAddress{address}
	} else {
		subset.NotReadyAddresses = []api.EndpointAddress{address}
	}
	if port != nil {
		subset.Ports = []api.EndpointPort{*port}
	}
	return subset
}

// portKey is an EndpointPort usable as a map key (AppProtocol is a pointer).
type portKey struct {
	name, protocol, appProtocol string
	port                        int32
	// none marks the sentinel of addresses listed without ports.
	none bool
}

func keyOfPort(p api.EndpointPort) portKey {
	k := portKey{name: p.Name, protocol: p.Protocol, port: p.Port}
	if p.AppProtocol != nil {
		k.appProtocol = *p.AppProtocol
	}
	return k
}

// addressKey tells addresses apart: the same IP may come from two Pods
// (one leaving, one arriving), and both are kept for attribution.
type addressKey struct{ ip, uid string }

func keyOfAddress(a *api.EndpointAddress) addressKey {
	k := addressKey{ip: a.IP}
	if a.TargetRef != nil {
		k.uid = a.TargetRef.UID
	}
	return k
}

// RepackSubsets regroups subsets so that each distinct set of (address,
// readiness) pairs appears once, with every port it offers — Kubernetes'
// RepackSubsets. An address ready on a port in any input subset is ready on
// it in the output. The result is sorted, so equal inputs give identical output.
func RepackSubsets(subsets []api.EndpointSubset) []api.EndpointSubset {
	// Map each port to the addresses offering it, with their readiness.
	addresses := map[addressKey]api.EndpointAddress{}
	portAddresses := map[portKey]map[addressKey]bool{}
	portOrder := []portKey{}
	record := func(a *api.EndpointAddress, port portKey, ready bool) {
		key := keyOfAddress(a)
		if _, seen := addresses[key]; !seen {
			addresses[key] = *a
		}
		set, ok := portAddresses[port]
		if !ok {
			set = map[addressKey]bool{}
			portAddresses[port] = set
			portOrder = append(portOrder, port)
		}
		if wasReady, seen := set[key]; !seen || !wasReady {
			set[key] = ready
		}
	}
	ports := map[portKey]api.EndpointPort{}
	for i := range subsets {
		s := &subsets[i]
		keys := []portKey{{none: true}}
		if len(s.Ports) > 0 {
			keys = keys[:0]
			for _, p := range s.Ports {
				k := keyOfPort(p)
				ports[k] = p
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			for j := range s.Addresses {
				record(&s.Addresses[j], k, true)
			}
			for j := range s.NotReadyAddresses {
				record(&s.NotReadyAddresses[j], k, false)
			}
		}
	}

	// Group the ports by the exact set of addresses (and readiness) they reach.
	type group struct {
		set   map[addressKey]bool
		ports []api.EndpointPort
	}
	groups := map[string]*group{}
	var groupOrder []string
	for _, port := range portOrder {
		set := portAddresses[port]
		id := fingerprint(set)
		g, ok := groups[id]
		if !ok {
			g = &group{set: set}
			groups[id] = g
			groupOrder = append(groupOrder, id)
		}
		if !port.none {
			g.ports = append(g.ports, ports[port])
		}
	}

	var out []api.EndpointSubset
	for _, id := range groupOrder {
		g := groups[id]
		var subset api.EndpointSubset
		for key, ready := range g.set {
			if ready {
				subset.Addresses = append(subset.Addresses, addresses[key])
			} else {
				subset.NotReadyAddresses = append(subset.NotReadyAddresses, addresses[key])
			}
		}
		subset.Ports = g.ports
		sortSubset(&subset)
		out = append(out, subset)
	}
	slices.SortFunc(out, func(a, b api.EndpointSubset) int { return strings.Compare(subsetSortKey(a), subsetSortKey(b)) })
	return out
}

// fingerprint names a set of (address, readiness) pairs independently of order.
func fingerprint(set map[addressKey]bool) string {
	parts := make([]string, 0, len(set))
	for key, ready := range set {
		parts = append(parts, key.ip+"|"+key.uid+"|"+strconv.FormatBool(ready))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func sortSubset(s *api.EndpointSubset) {
	byAddress := func(a, b api.EndpointAddress) int {
		return cmp.Or(compareIPs(a.IP, b.IP), strings.Compare(uidOf(a), uidOf(b)))
	}
	slices.SortFunc(s.Addresses, byAddress)
	slices.SortFunc(s.NotReadyAddresses, byAddress)
	slices.SortFunc(s.Ports, func(a, b api.EndpointPort) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.Port, b.Port), strings.Compare(a.Protocol, b.Protocol))
	})
}

func uidOf(a api.EndpointAddress) string {
	if a.TargetRef == nil {
		return ""
	}
	return a.TargetRef.UID
}

// compareIPs orders addresses numerically (10.0.0.9 before 10.0.0.10);
// anything that does not parse sorts as text, after the addresses.
func compareIPs(a, b string) int {
	ipA, errA := netip.ParseAddr(a)
	ipB, errB := netip.ParseAddr(b)
	switch {
	case errA == nil && errB == nil:
		return ipA.Compare(ipB)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// subsetSortKey orders subsets by their ports, then their first addresses.
func subsetSortKey(s api.EndpointSubset) string {
	var b strings.Builder
	for _, p := range s.Ports {
		b.WriteString(p.Name + "/" + strconv.Itoa(int(p.Port)) + "/" + p.Protocol + ";")
	}
	b.WriteString("|")
	for _, a := range s.Addresses {
		b.WriteString(a.IP + "/" + uidOf(a) + ";")
	}
	b.WriteString("|")
	for _, a := range s.NotReadyAddresses {
		b.WriteString(a.IP + "/" + uidOf(a) + ";")
	}
	return b.String()
}
