package proxy

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"slices"
	"strings"

	"kubelite/nodeagent/proxy/iptables"
	"kubelite/nodeagent/proxy/nftables"
)

// ServiceRules extracts from `iptables-save` output (any tables; nat and
// filter are the ones that matter) the rules that implement one Service:
// the rules in the shared chains (KUBE-SERVICES, KUBE-NODEPORTS,
// KUBE-EXTERNAL-SERVICES) whose comment names the Service, followed by
// every per-Service chain those rules lead to (KUBE-SVC-, KUBE-SVL-,
// KUBE-EXT-, KUBE-SEP-), in the order a packet meets them. It returns ""
// if nothing implements the Service.
//
// It backs `kubelite proxy rules --service ns/name`:
//
//	*nat
//	-A KUBE-SERVICES ! -s 10.244.0.0/16 -d 10.102.120.255/32 ... -j KUBE-MARK-MASQ
//	-A KUBE-SERVICES -d 10.102.120.255/32 ... -j KUBE-SVC-RL3JAE4GN7VOGDGP
//	-A KUBE-SVC-RL3JAE4GN7VOGDGP -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-...
//	...
func ServiceRules(rules []byte, namespace, name string) string {
	// Comments start with the Service port name, "ns/name:port".
	marker := `--comment "` + namespace + "/" + name + ":"
	var out strings.Builder
	for _, t := range parseSave(rules) {
		var lines []string
		var queue []string // per-Service chains to print, in discovery order
		seen := make(map[string]bool)
		follow := func(rule string) {
			if target := ruleTarget(rule); isPerServiceChain(target) && !seen[target] {
				seen[target] = true
				queue = append(queue, target)
			}
		}
		// Dispatch chains first, KUBE-SERVICES before KUBE-NODEPORTS, as
		// a packet meets them; then any other chain in save order.
		for _, chain := range dispatchOrder(t.order) {
			for _, rule := range t.rules[chain] {
				if strings.Contains(rule, marker) {
					lines = append(lines, rule)
					follow(rule)
				}
			}
		}
		for i := 0; i < len(queue); i++ {
			for _, rule := range t.rules[queue[i]] {
				lines = append(lines, rule)
				follow(rule)
			}
		}
		if len(lines) > 0 {
			out.WriteString("*" + t.name + "\n")
			for _, line := range lines {
				out.WriteString(line + "\n")
			}
		}
	}
	return out.String()
}

// savedTable is one table of iptables-save output.
type savedTable struct {
	name  string
	order []string            // chains as declared
	rules map[string][]string // chain → "-A" lines
}

// parseSave splits iptables-save output into tables, nat first.
func parseSave(data []byte) []savedTable {
	var tables []savedTable
	var current *savedTable
	scanner := bufio.NewScanner(bytes.NewReader(data))
	scanner.Buffer(nil, 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			tables = append(tables, savedTable{name: line[1:], rules: make(map[string][]string)})
			current = &tables[len(tables)-1]
		case current == nil:
		case strings.HasPrefix(line, ":"):
			chain, _, _ := strings.Cut(line[1:], " ")
			current.order = append(current.order, chain)
		case strings.HasPrefix(line, "-A "):
			chain, _, _ := strings.Cut(line[len("-A "):], " ")
			current.rules[chain] = append(current.rules[chain], line)
		}
	}
	// nat, where Services are implemented, before filter, where they are refused.
	slices.SortStableFunc(tables, func(a, b savedTable) int {
		return cmp.Compare(boolRank(a.name != "nat"), boolRank(b.name != "nat"))
	})
	return tables
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// dispatchOrder puts the shared dispatch chains first, in packet order,
// and leaves out the per-Service chains (reached by following jumps).
func dispatchOrder(chains []string) []string {
	first := []string{ServicesChain, NodePortsChain, ExternalServicesChain}
	var order []string
	for _, chain := range first {
		if slices.Contains(chains, chain) {
			order = append(order, chain)
		}
	}
	for _, c := range chains {
		if !isPerServiceChain(c) && !slices.Contains(first, c) {
			order = append(order, c)
		}
	}
	return order
}

// ruleTarget returns the -j target of a rule line, or "".
func ruleTarget(rule string) string {
	_, after, ok := strings.Cut(rule, " -j ")
	if !ok {
		return ""
	}
	target, _, _ := strings.Cut(after, " ")
	return target
}

// NodeServiceRules reads the rules that implement one Service from the
// node whose network namespace is at netnsPath ("" for this one): from the
// nftables table when the node runs in nftables mode, otherwise from
// iptables-save of the backend that holds the node's rules. It returns ""
// when neither has any.
func NodeServiceRules(ctx context.Context, netnsPath, namespace, name string) (string, error) {
	if nft, err := nftables.New(netnsPath); err == nil {
		listing, err := nft.List(ctx, "table", nftFamily, nftTable)
		if err == nil {
			if out := NFTServiceRules(listing, namespace, name); out != "" {
				return out, nil
			}
		} else if !nftables.IsNotFound(err) {
			return "", err
		}
	}
	backend, err := iptables.Detect(ctx, netnsPath, CanaryChain)
	if err != nil {
		return "", err
	}
	ipt, err := iptables.NewWithBackend(netnsPath, backend)
	if err != nil {
		return "", err
	}
	var saved []byte
	for _, table := range []iptables.Table{iptables.TableNAT, iptables.TableFilter} {
		out, err := ipt.Save(ctx, table)
		if err != nil {
			return "", err
		}
		saved = append(saved, out...)
	}
	return ServiceRules(saved, namespace, name), nil
}
