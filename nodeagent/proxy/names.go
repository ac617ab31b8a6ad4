package proxy

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// The chains every node has, whatever its Services. The names, like every
// name in this file, are kube-proxy's own, so that `iptables-save` on a
// kubelite node reads like the Kubernetes documentation and tutorials.
const (
	// ServicesChain (nat) matches every Service address and port and jumps
	// to the Service's chain. In the filter table, a chain of the same name
	// rejects traffic to Services without endpoints.
	ServicesChain = "KUBE-SERVICES"
	// NodePortsChain (nat) matches node ports; the last rule of
	// ServicesChain jumps here for packets addressed to the node itself.
	NodePortsChain = "KUBE-NODEPORTS"
	// PostroutingChain (nat) masquerades the packets MarkMasqChain marked.
	PostroutingChain = "KUBE-POSTROUTING"
	// MarkMasqChain (nat) marks a packet for masquerading (source NAT)
	// once it leaves the node.
	MarkMasqChain = "KUBE-MARK-MASQ"
	// ExternalServicesChain (filter) rejects traffic to node ports and
	// load-balancer IPs of Services without endpoints.
	ExternalServicesChain = "KUBE-EXTERNAL-SERVICES"
	// ForwardChain (filter) accepts forwarded Service traffic even where
	// the FORWARD policy is DROP.
	ForwardChain = "KUBE-FORWARD"
	// CanaryChain is an empty chain in each table the proxier writes; if
	// it disappears, someone flushed the table and the proxier rewrites
	// everything at once instead of waiting for the periodic resync.
	CanaryChain = "KUBE-PROXY-CANARY"
)

// masqueradeMark is the bit MarkMasqChain sets and PostroutingChain tests:
// kube-proxy's default --iptables-masquerade-bit 14.
const masqueradeMark = "0x4000"

// Prefixes of the chains the proxier creates per Service port and per
// endpoint. The proxier only ever deletes chains with these prefixes, so it
// never touches chains that other programs own.
const (
	serviceChainPrefix  = "KUBE-SVC-" // all endpoints of a Service port
	localChainPrefix    = "KUBE-SVL-" // only this node's endpoints (traffic policy Local)
	externalChainPrefix = "KUBE-EXT-" // node port and load-balancer traffic, externalTrafficPolicy Local
	endpointChainPrefix = "KUBE-SEP-" // one endpoint: hairpin masquerade and DNAT
)

var perServiceChainPrefixes = []string{serviceChainPrefix, localChainPrefix, externalChainPrefix, endpointChainPrefix}

// isPerServiceChain reports whether chain is one the proxier creates for a
// Service port or an endpoint (and may therefore delete).
func isPerServiceChain(chain string) bool {
	for _, prefix := range perServiceChainPrefixes {
		if strings.HasPrefix(chain, prefix) {
			return true
		}
	}
	return false
}

// ServicePortName names one port of one Service, as kube-proxy's
// proxy.ServicePortName does. Port is the port's name, "" for the single
// unnamed port most Services have.
type ServicePortName struct {
	Namespace string
	Name      string
	Port      string
}

// String is "namespace/name:port", with the colon even for an unnamed port
// ("default/httpd-svc:"). kube-proxy wrote it so when the tutorial was made;
// its rule comments ("default/httpd-svc: cluster IP") and chain names
// (KUBE-SVC-RL3JAE4GN7VOGDGP) come from this string. (Kubernetes 1.19 and
// later drop the colon of an unnamed port, which changes the hash; we keep
// the tutorial's names. Named ports, like kubernetes' "https", hash the
// same in every version.)
func (n ServicePortName) String() string {
	return n.Namespace + "/" + n.Name + ":" + n.Port
}

// ServiceChainName is the KUBE-SVC- chain of a Service port: it spreads new
// connections over all ready endpoints. protocol is "TCP", "UDP" or "SCTP"
// in any case. For example ServiceChainName({default, kubernetes, https},
// "TCP") is "KUBE-SVC-NPX46M4PTMTKRN6Y" on every Kubernetes cluster.
func ServiceChainName(port ServicePortName, protocol string) string {
	return serviceChainPrefix + portProtoHash(port, protocol)
}

// LocalServiceChainName is the KUBE-SVL- chain of a Service port: like its
// KUBE-SVC- chain but over this node's endpoints only (traffic policy Local).
func LocalServiceChainName(port ServicePortName, protocol string) string {
	return localChainPrefix + portProtoHash(port, protocol)
}

// ExternalChainName is the KUBE-EXT- chain of a Service port with
// externalTrafficPolicy Local: node port and load-balancer traffic enters it
// and goes on to this node's endpoints only.
func ExternalChainName(port ServicePortName, protocol string) string {
	return externalChainPrefix + portProtoHash(port, protocol)
}

// EndpointChainName is the KUBE-SEP- chain of one endpoint ("10.244.1.2:80")
// of a Service port: it DNATs to the endpoint.
func EndpointChainName(port ServicePortName, protocol, endpoint string) string {
	return endpointChainPrefix + chainHash(port.String()+strings.ToLower(protocol)+endpoint)
}

func portProtoHash(port ServicePortName, protocol string) string {
	return chainHash(port.String() + strings.ToLower(protocol))
}

// chainHash is kube-proxy's: the first 16 characters of the base32 of the
// SHA-256 of s. Chain names may have at most 28 characters, and a hash keeps
// them fixed in length and stable across restarts and nodes.
func chainHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(sum[:])[:16]
}
