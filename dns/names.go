package dns

import (
	"net/netip"
	"strconv"
	"strings"

	miekg "github.com/miekg/dns"
)

// nameKind says what a name inside the cluster zone refers to. The zone's
// tree, for the zone cluster.local:
//
//	cluster.local.                                  apex: SOA, NS
//	├── dns-version                                 TXT "1.0.1"
//	├── dns
//	│   └── ns                                      A of the kube-dns Service
//	├── svc
//	│   └── <ns>                                    exists while it has Services
//	│       └── <svc>                               A/AAAA, or CNAME (ExternalName)
//	│           ├── <hostname>                      A/AAAA of one endpoint (headless)
//	│           └── _<proto>                        exists while a port is named
//	│               └── _<port>                     SRV
//	└── pod
//	    └── <ns>
//	        └── <a-b-c-d>                           A a.b.c.d
//
// Names with no place in this tree cannot exist, whatever the cluster holds.
type nameKind int

const (
	nameImpossible       nameKind = iota // no place in the tree: NXDOMAIN
	nameApex                             // cluster.local.
	nameDNSVersion                       // dns-version.cluster.local.
	nameNameserver                       // ns.dns.cluster.local.
	nameEmptyNonTerminal                 // svc., pod., dns., <ns>.pod.: exist, hold no records
	nameNamespace                        // <ns>.svc.
	nameService                          // <svc>.<ns>.svc.
	nameEndpoint                         // <hostname>.<svc>.<ns>.svc.
	nameProtocol                         // _<proto>.<svc>.<ns>.svc.
	namePortProtocol                     // _<port>._<proto>.<svc>.<ns>.svc.
	namePod                              // <a-b-c-d>.<ns>.pod.
)

// clusterName is a query name inside the cluster zone, taken apart.
type clusterName struct {
	kind      nameKind
	namespace string
	service   string
	hostname  string     // nameEndpoint
	port      string     // namePortProtocol: the port's name, without "_"
	protocol  string     // nameProtocol, namePortProtocol: "tcp", "udp", "sctp"
	podIP     netip.Addr // namePod
}

// needsStore reports whether answering for the name needs the caches. Names
// that need nothing but the zone are answered even before they have synced.
func (n clusterName) needsStore() bool {
	switch n.kind {
	case nameImpossible, nameApex, nameDNSVersion, nameEmptyNonTerminal, namePod:
		return false
	}
	return true
}

// parseClusterName takes apart name, which must be lower-case and inside
// zone (also lower-case, fully qualified).
func parseClusterName(name, zone string) clusterName {
	if len(name) == len(zone) {
		return clusterName{kind: nameApex}
	}
	// "web.shop.svc.cluster.local." → ["web", "shop", "svc"], then read
	// from the right: the tree is walked from the apex down.
	labels := miekg.SplitDomainName(name[:len(name)-len(zone)])
	n := len(labels)
	at := func(depth int) string { return labels[n-1-depth] } // depth 0 = just below the apex

	switch at(0) {
	case "dns-version":
		if n == 1 {
			return clusterName{kind: nameDNSVersion}
		}
	case "dns":
		switch {
		case n == 1:
			return clusterName{kind: nameEmptyNonTerminal}
		case n == 2 && at(1) == "ns":
			return clusterName{kind: nameNameserver}
		}
	case "svc":
		return parseServiceName(labels[:n-1])
	case "pod":
		switch n {
		case 1, 2:
			return clusterName{kind: nameEmptyNonTerminal}
		case 3:
			if ip, ok := parseDashedIP(at(2)); ok {
				return clusterName{kind: namePod, namespace: at(1), podIP: ip}
			}
		}
	}
	return clusterName{kind: nameImpossible}
}

// parseServiceName takes apart the labels left of "svc.<zone>.".
func parseServiceName(labels []string) clusterName {
	switch len(labels) {
	case 0:
		return clusterName{kind: nameEmptyNonTerminal} // svc.<zone>.
	case 1:
		return clusterName{kind: nameNamespace, namespace: labels[0]}
	case 2:
		return clusterName{kind: nameService, namespace: labels[1], service: labels[0]}
	case 3:
		n := clusterName{namespace: labels[2], service: labels[1]}
		if proto, ok := underscored(labels[0]); ok {
			n.kind, n.protocol = nameProtocol, proto
		} else {
			n.kind, n.hostname = nameEndpoint, labels[0]
		}
		return n
	case 4:
		port, portOK := underscored(labels[0])
		proto, protoOK := underscored(labels[1])
		if portOK && protoOK {
			return clusterName{kind: namePortProtocol, namespace: labels[3], service: labels[2], port: port, protocol: proto}
		}
	}
	// Deeper names have no place in the tree. This is where the search
	// path's junk ends up, e.g. "web.shop.svc.cluster.local.shop.svc.cluster.local.".
	return clusterName{kind: nameImpossible}
}

// underscored strips the "_" that marks SRV labels ("_http" → "http").
func underscored(label string) (string, bool) {
	rest, ok := strings.CutPrefix(label, "_")
	return rest, ok && rest != ""
}

// Reverse lookup zones: IPv4 addresses are written backwards under
// in-addr.arpa, IPv6 addresses nibble by nibble under ip6.arpa.
const (
	reverseZone4 = "in-addr.arpa."
	reverseZone6 = "ip6.arpa."
)

// parseReverseName returns the IP that a full reverse name stands for:
// "20.0.96.10.in-addr.arpa." → 10.96.0.20. Partial names ("96.10.in-addr.arpa.")
// and anything else are not addresses.
func parseReverseName(name string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, "."+reverseZone4); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, label := range labels {
			v, err := strconv.ParseUint(label, 10, 8)
			if err != nil || (len(label) > 1 && label[0] == '0') {
				return netip.Addr{}, false
			}
			b[3-i] = byte(v)
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(name, "."+reverseZone6); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, label := range labels {
			v, err := strconv.ParseUint(label, 16, 4)
			if err != nil || len(label) != 1 {
				return netip.Addr{}, false
			}
			nibble := 31 - i // the last label is the first nibble
			b[nibble/2] |= byte(v) << (4 * (1 - nibble%2))
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}
