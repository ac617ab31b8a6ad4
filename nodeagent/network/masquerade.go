package network

import (
	"fmt"
	"net/netip"

	goiptables "github.com/coreos/go-iptables/iptables"
)

// The agent's own iptables chains. Only these are ever flushed; the
// built-in chains get one jump rule each.
const (
	PostroutingChain = "KUBELITE-POSTROUTING" // nat: masquerade pods' traffic leaving the cluster
	ForwardChain     = "KUBELITE-FORWARD"     // filter: let pod traffic through a DROP policy
)

// iptablesRule is one rule of one chain, in iptables' argument form.
type iptablesRule struct {
	table, chain string
	spec         []string
}

// ownRules are the contents of the agent's chains for a node:
//
//	-t nat    -A KUBELITE-POSTROUTING -s <podCIDR> ! -d <clusterCIDR> -j MASQUERADE
//	-t filter -A KUBELITE-FORWARD -s <clusterCIDR> -j ACCEPT
//	-t filter -A KUBELITE-FORWARD -d <clusterCIDR> -j ACCEPT
//
// Pod-to-pod traffic, on this node or another, keeps its source address;
// traffic to anything else leaves with the node's. The FORWARD rules
// matter on machines whose FORWARD policy is DROP (Docker sets it so).
func ownRules(podCIDR, clusterCIDR netip.Prefix) []iptablesRule {
	pods, cluster := podCIDR.Masked().String(), clusterCIDR.Masked().String()
	return []iptablesRule{
		{"nat", PostroutingChain, []string{"-s", pods, "!", "-d", cluster,
			"-m", "comment", "--comment", "kubelite: pod traffic leaving the cluster network", "-j", "MASQUERADE"}},
		{"filter", ForwardChain, []string{"-s", cluster,
			"-m", "comment", "--comment", "kubelite: pod traffic", "-j", "ACCEPT"}},
		{"filter", ForwardChain, []string{"-d", cluster,
			"-m", "comment", "--comment", "kubelite: pod traffic", "-j", "ACCEPT"}},
	}
}

// jumpRules hook the agent's chains into the built-in ones, at the front.
func jumpRules() []iptablesRule {
	return []iptablesRule{
		{"nat", "POSTROUTING", []string{"-m", "comment", "--comment", "kubelite pod masquerade", "-j", PostroutingChain}},
		{"filter", "FORWARD", []string{"-m", "comment", "--comment", "kubelite pod forwarding", "-j", ForwardChain}},
	}
}

// iptables is the part of go-iptables the agent uses.
type iptables interface {
	// ClearChain creates the chain, or flushes it if it exists.
	ClearChain(table, chain string) error
	Append(table, chain string, spec ...string) error
	// InsertUnique inserts the rule at pos unless it is in the chain already.
	InsertUnique(table, chain string, pos int, spec ...string) error
}

// installRules writes the agent's chains and hooks them in. It may run
// again at any time: the chains are rewritten, the jumps are not doubled.
func installRules(ipt iptables, podCIDR, clusterCIDR netip.Prefix) error {
	chains := map[[2]string]bool{}
	for _, r := range ownRules(podCIDR, clusterCIDR) {
		if key := [2]string{r.table, r.chain}; !chains[key] {
			chains[key] = true
			if err := ipt.ClearChain(r.table, r.chain); err != nil {
				return fmt.Errorf("iptables -t %s -N %s: %w", r.table, r.chain, err)
			}
		}
		if err := ipt.Append(r.table, r.chain, r.spec...); err != nil {
			return fmt.Errorf("iptables -t %s -A %s: %w", r.table, r.chain, err)
		}
	}
	for _, r := range jumpRules() {
		if err := ipt.InsertUnique(r.table, r.chain, 1, r.spec...); err != nil {
			return fmt.Errorf("iptables -t %s -I %s: %w", r.table, r.chain, err)
		}
	}
	return nil
}

// namespacedIPTables runs go-iptables inside the node's namespace: each
// call execs iptables from a thread in that namespace.
type namespacedIPTables struct {
	node Namespace
	ipt  *goiptables.IPTables
}

func newNamespacedIPTables(node Namespace) (*namespacedIPTables, error) {
	n := &namespacedIPTables{node: node}
	err := node.Do(func() error {
		var err error
		n.ipt, err = goiptables.New(goiptables.Timeout(5))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("iptables: %w", err)
	}
	return n, nil
}

func (n *namespacedIPTables) ClearChain(table, chain string) error {
	return n.node.Do(func() error { return n.ipt.ClearChain(table, chain) })
}

func (n *namespacedIPTables) Append(table, chain string, spec ...string) error {
	return n.node.Do(func() error { return n.ipt.Append(table, chain, spec...) })
}

func (n *namespacedIPTables) InsertUnique(table, chain string, pos int, spec ...string) error {
	return n.node.Do(func() error { return n.ipt.InsertUnique(table, chain, pos, spec...) })
}
