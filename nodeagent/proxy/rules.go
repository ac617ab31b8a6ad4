package proxy

import (
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"kubelite/nodeagent/proxy/iptables"
)

// RuleSet is the desired content of every chain the proxier owns, in the
// filter and nat tables. Rules are written exactly as `iptables-save`
// prints them (option order, quoting, --set-xmark for MARK, the
// probabilities' eleven digits), so the text BuildRules renders is the text
// a user sees on the node.
type RuleSet struct {
	filter *table
	nat    *table
	// fragments hold what each Service port contributed, for the next
	// build to reuse when the port has not changed; cidr is the
	// ClusterCIDR they were built with, which they also depend on.
	fragments map[portKey]*portFragment
	cidr      netip.Prefix
}

// portFragment is the rules of one Service port: the chains of its own
// (KUBE-SVC-, KUBE-SEP-, ...) and the rules it adds to the shared ones
// (KUBE-SERVICES, KUBE-NODEPORTS, KUBE-EXTERNAL-SERVICES), per table.
type portFragment struct {
	port   servicePort
	filter *table
	nat    *table
}

// BuildRules computes the rules for in. It is a pure function: the same
// input always gives the same text, byte for byte.
//
// How a packet to a Service travels (nat table; the filter table only
// refuses traffic to Services without endpoints):
//
//	PREROUTING / OUTPUT
//	  └─ KUBE-SERVICES            one pair of rules per Service port and address:
//	       │                      "from outside the pod network? mark for masquerade",
//	       │                      then jump to the port's KUBE-SVC chain
//	       ├─ KUBE-SVC-<hash>     pick one endpoint at random (-m statistic)
//	       │    └─ KUBE-SEP-<hash>  DNAT to the pod's ip:port
//	       └─ KUBE-NODEPORTS      last rule: packets to one of this node's own
//	                              addresses, matched by node port
//	POSTROUTING
//	  └─ KUBE-POSTROUTING         masquerade what KUBE-MARK-MASQ marked
func BuildRules(in RuleInput) *RuleSet {
	return buildRules(in, servicePorts(in), nil)
}

// buildRules is BuildRules for ports already computed from in (the
// proxier computes them once per sync, for the rules and for conntrack).
// The rules of a port that prev (nil: none) has built from the same port
// are reused, not rendered again: at 10,000 Services, rendering every
// rule costs several times what writing one endpoint change does.
func buildRules(in RuleInput, ports []servicePort, prev *RuleSet) *RuleSet {
	b := &ruleBuilder{
		in:     in,
		filter: newTable(iptables.TableFilter),
		nat:    newTable(iptables.TableNAT),
	}
	b.writeBaseChains()
	rs := &RuleSet{filter: b.filter, nat: b.nat, fragments: make(map[portKey]*portFragment, len(ports)), cidr: in.ClusterCIDR}
	reusable := prev != nil && prev.cidr == in.ClusterCIDR
	for i := range ports {
		p := &ports[i]
		f := rs.fragments[p.key()]
		if f != nil {
			continue // a duplicate port: the first one's rules stand
		}
		if old := prev.fragment(p.key()); reusable && old != nil && old.port.equal(p) {
			f = old
		} else {
			f = buildPortFragment(in, p)
		}
		rs.fragments[p.key()] = f
		rs.filter.merge(f.filter)
		rs.nat.merge(f.nat)
	}
	// Node ports come last: a packet for this node (addrtype LOCAL) that
	// matched no cluster, external or load-balancer IP rule above may be
	// for a node port.
	b.nat.chain(ServicesChain).add(
		comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain"),
		"-m", "addrtype", "--dst-type", "LOCAL", "-j", NodePortsChain)
	return rs
}

// buildPortFragment renders the rules of one Service port on their own.
func buildPortFragment(in RuleInput, p *servicePort) *portFragment {
	b := &ruleBuilder{in: in, filter: newTable(iptables.TableFilter), nat: newTable(iptables.TableNAT)}
	b.writeServicePort(p)
	return &portFragment{port: *p, filter: b.filter, nat: b.nat}
}

// fragment returns the fragment of a port; nil if there is none, or no
// rule set.
func (rs *RuleSet) fragment(key portKey) *portFragment {
	if rs == nil {
		return nil
	}
	return rs.fragments[key]
}

type ruleBuilder struct {
	in     RuleInput
	filter *table
	nat    *table
}

// writeBaseChains declares the chains every node has and fills the ones
// whose rules do not depend on Services. The order here is the order of
// the chain lines in the output.
func (b *ruleBuilder) writeBaseChains() {
	b.filter.chain(ServicesChain)
	b.filter.chain(ExternalServicesChain)
	forward := b.filter.chain(ForwardChain)
	// A packet conntrack cannot place (a stray TCP segment of a DNATed
	// connection) would otherwise be forwarded un-NATed and reset the
	// client's connection.
	forward.add("-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
	// Accept Service traffic even where the FORWARD policy is DROP.
	forward.add(comment("kubernetes forwarding rules"), "-m", "mark", "--mark", masqueradeMark+"/"+masqueradeMark, "-j", "ACCEPT")
	forward.add(comment("kubernetes forwarding conntrack rule"), "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")

	b.nat.chain(ServicesChain)
	b.nat.chain(NodePortsChain)
	post := b.nat.chain(PostroutingChain)
	// Unmarked packets are none of our business; marked ones lose the mark
	// (--set-xmark 0x4000/0x0 is how iptables-save prints --xor-mark
	// 0x4000), so that it cannot leak into the next hop's decisions, and
	// are masqueraded: the source becomes this node's address, and the
	// reply comes back through this node, where conntrack undoes the DNAT.
	post.add("-m", "mark", "!", "--mark", masqueradeMark+"/"+masqueradeMark, "-j", "RETURN")
	post.add("-j", "MARK", "--set-xmark", masqueradeMark+"/0x0")
	post.add(comment("kubernetes service traffic requiring SNAT"), "-j", "MASQUERADE", "--random-fully")
	// iptables-save prints --or-mark 0x4000 as --set-xmark 0x4000/0x4000.
	b.nat.chain(MarkMasqChain).add("-j", "MARK", "--set-xmark", masqueradeMark+"/"+masqueradeMark)

	// The canaries: empty chains, written in the same transaction as the
	// rest, so that they exist exactly when the rest does. One gone means
	// someone deleted our chains.
	b.filter.chain(CanaryChain)
	b.nat.chain(CanaryChain)
}

// writeServicePort writes the rules of one Service port.
func (b *ruleBuilder) writeServicePort(p *servicePort) {
	name := p.name.String() // "default/httpd-svc:" — the rule comments start with it
	svcChain := ServiceChainName(p.name, p.protocol)
	localChain := LocalServiceChainName(p.name, p.protocol)
	extChain := ExternalChainName(p.name, p.protocol)
	localEndpoints := p.localEndpoints()
	dport := []string{"-m", p.protocol, "--dport", strconv.Itoa(int(p.port))}

	// A Service without endpoints is rejected in the filter table, so a
	// client gets "connection refused" at once instead of a timeout. No nat
	// rules are written for it.
	if len(p.endpoints) == 0 {
		b.filterClusterIP(p, name+" has no endpoints", "REJECT")
		b.filterExternal(p, name+" has no endpoints", "REJECT")
		return
	}

	// Traffic to the cluster IP. With internalTrafficPolicy: Local it may
	// only go to this node's endpoints; without any, it is dropped (not
	// rejected: the Service has endpoints, just not here).
	internalChain := svcChain
	if p.internalLocal {
		internalChain = localChain
	}
	if p.internalLocal && len(localEndpoints) == 0 {
		b.filterClusterIP(p, name+" has no local endpoints", "DROP")
	} else {
		services := b.nat.chain(ServicesChain)
		clusterIP := []string{"-d", hostCIDR(p.clusterIP), "-p", p.protocol}
		// The tutorial's first rule: a packet from outside the pod network
		// (the node itself, or a client that routed to the cluster IP) is
		// marked for masquerade, or the pod's reply would not come back
		// through this node's conntrack. Newer kube-proxy versions write
		// this rule at the head of the KUBE-SVC chain instead; we keep it
		// here, where the tutorial shows it, at the cost of one more rule
		// per port in KUBE-SERVICES.
		if b.in.ClusterCIDR.IsValid() {
			services.add("!", "-s", b.in.ClusterCIDR.String(), clusterIP, comment(name+" cluster IP"), dport, "-j", MarkMasqChain)
		}
		services.add(clusterIP, comment(name+" cluster IP"), dport, "-j", internalChain)
	}

	// Traffic to node ports, load-balancer and external IPs.
	if p.externallyReachable() {
		if p.externalLocal {
			b.writeExternalLocal(p, extChain, svcChain, localChain, len(localEndpoints) > 0)
		} else {
			// Cluster policy, the tutorial's two rules per address: mark
			// for masquerade, then the same KUBE-SVC chain as the cluster
			// IP. Masquerading is needed because the endpoint may be on
			// another node.
			for _, dest := range externalDestinations(p) {
				chain := b.nat.chain(dest.natChain)
				match := dest.match(p.protocol, dest.label, false)
				chain.add(match, "-j", MarkMasqChain)
				chain.add(match, "-j", svcChain)
			}
		}
	}

	// The load-balancing chains, only where a rule above jumps to them.
	usesClusterChain := !p.internalLocal || p.externallyReachable()
	usesLocalChain := (p.internalLocal || p.externalLocal) && len(localEndpoints) > 0
	if usesClusterChain {
		b.writeBalancingChain(p, svcChain, p.endpoints)
	}
	if usesLocalChain {
		b.writeBalancingChain(p, localChain, localEndpoints)
	}
	endpoints := p.endpoints
	if !usesClusterChain {
		endpoints = localEndpoints
	}
	for _, ep := range endpoints {
		b.writeEndpointChain(p, ep)
	}
}

// destination is one way a Service port is reached from outside the
// cluster: an external or load-balancer IP in KUBE-SERVICES, or the node
// port in KUBE-NODEPORTS.
type destination struct {
	natChain string     // the chain of its nat rules
	address  netip.Addr // invalid for the node port, which any node address answers
	port     int32      // the Service port, or the node port
	label    string     // the comment of its nat rules
}

// externalDestinations lists p's external IPs, load-balancer IPs and node
// port, in kube-proxy's order.
func externalDestinations(p *servicePort) []destination {
	name := p.name.String()
	var out []destination
	for _, ip := range p.externalIPs {
		out = append(out, destination{natChain: ServicesChain, address: ip, port: p.port, label: name + " external IP"})
	}
	for _, ip := range p.loadBalancerIPs {
		out = append(out, destination{natChain: ServicesChain, address: ip, port: p.port, label: name + " loadbalancer IP"})
	}
	if p.nodePort != 0 {
		// The node port rule's comment is the bare name: "default/httpd-svc:".
		out = append(out, destination{natChain: NodePortsChain, port: p.nodePort, label: name})
	}
	return out
}

// match is the match of a rule for d with the comment text, in
// iptables-save's order. A filter rule for a node port (forFilter) also
// matches the node's own addresses, as the jump to KUBE-NODEPORTS does:
// the filter chain sees every packet.
func (d destination) match(protocol, text string, forFilter bool) []string {
	var args []string
	if d.address.IsValid() {
		args = append(args, "-d", hostCIDR(d.address))
	}
	args = append(args, "-p", protocol)
	args = append(args, comment(text)...)
	if forFilter && !d.address.IsValid() {
		args = append(args, "-m", "addrtype", "--dst-type", "LOCAL")
	}
	return append(args, "-m", protocol, "--dport", strconv.Itoa(int(d.port)))
}

// filterClusterIP ends traffic to p's cluster IP with target (REJECT or
// DROP), in the filter table's KUBE-SERVICES.
func (b *ruleBuilder) filterClusterIP(p *servicePort, text, target string) {
	b.filter.chain(ServicesChain).add("-d", hostCIDR(p.clusterIP), "-p", p.protocol, comment(text),
		"-m", p.protocol, "--dport", strconv.Itoa(int(p.port)), filterTarget(target))
}

// filterExternal ends traffic to p's node port, load-balancer and external
// IPs with target, in KUBE-EXTERNAL-SERVICES.
func (b *ruleBuilder) filterExternal(p *servicePort, text, target string) {
	for _, dest := range externalDestinations(p) {
		b.filter.chain(ExternalServicesChain).add(dest.match(p.protocol, text, true), filterTarget(target))
	}
}

func filterTarget(target string) []string {
	if target == "REJECT" {
		// What iptables-save adds to a bare -j REJECT. For TCP the client
		// sees ECONNREFUSED, exactly like a closed port.
		return []string{"-j", "REJECT", "--reject-with", "icmp-port-unreachable"}
	}
	return []string{"-j", target}
}

// writeExternalLocal writes the rules of externalTrafficPolicy: Local. Node
// port and load-balancer traffic enters KUBE-EXT-, which keeps traffic from
// outside on this node's endpoints, without masquerading, so that the pod
// sees the client's real address. Traffic from pods and from the node
// itself may still use every endpoint.
func (b *ruleBuilder) writeExternalLocal(p *servicePort, extChain, svcChain, localChain string, hasLocal bool) {
	name := p.name.String()
	for _, dest := range externalDestinations(p) {
		b.nat.chain(dest.natChain).add(dest.match(p.protocol, dest.label, false), "-j", extChain)
	}
	ext := b.nat.chain(extChain)
	if b.in.ClusterCIDR.IsValid() {
		ext.add("-s", b.in.ClusterCIDR.String(), comment("pod traffic for "+name+" external destinations"), "-j", svcChain)
	}
	ext.add(comment("masquerade LOCAL traffic for "+name+" external destinations"), "-m", "addrtype", "--src-type", "LOCAL", "-j", MarkMasqChain)
	ext.add(comment("route LOCAL traffic for "+name+" external destinations"), "-m", "addrtype", "--src-type", "LOCAL", "-j", svcChain)
	if hasLocal {
		ext.add("-j", localChain)
	} else {
		// Nothing here to send it to: drop what the rules above let through.
		b.filterExternal(p, name+" has no local endpoints", "DROP")
	}
}

// writeBalancingChain fills a KUBE-SVC- or KUBE-SVL- chain: one rule per
// endpoint, each taking its share of the connections that reach it. Rule i
// of n matches with probability 1/(n-i), so that every endpoint gets 1/n
// overall: 1/3, then 1/2 of the remaining 2/3, then the rest. Only the first
// packet of a connection walks these rules; conntrack remembers the choice.
func (b *ruleBuilder) writeBalancingChain(p *servicePort, chainName string, endpoints []endpoint) {
	chain := b.nat.chain(chainName)
	if p.affinitySeconds > 0 {
		// Session affinity: a client seen recently (the "recent" module's
		// list named after the endpoint chain, filled by its --set) goes
		// back to the same endpoint.
		for _, ep := range endpoints {
			sep := EndpointChainName(p.name, p.protocol, ep.addr.String())
			chain.add("-m", "recent", "--rcheck", "--seconds", strconv.Itoa(int(p.affinitySeconds)), "--reap",
				"--name", sep, "--mask", "255.255.255.255", "--rsource", "-j", sep)
		}
	}
	for i, ep := range endpoints {
		sep := EndpointChainName(p.name, p.protocol, ep.addr.String())
		if remaining := len(endpoints) - i; remaining > 1 {
			chain.add("-m", "statistic", "--mode", "random", "--probability", probability(remaining), "-j", sep)
		} else {
			chain.add("-j", sep) // the last one takes what is left
		}
	}
}

// writeEndpointChain fills the KUBE-SEP- chain of one endpoint.
func (b *ruleBuilder) writeEndpointChain(p *servicePort, ep endpoint) {
	sepName := EndpointChainName(p.name, p.protocol, ep.addr.String())
	sep := b.nat.chain(sepName)
	// Hairpin: a pod that reaches itself through the Service must see the
	// connection come from the node, or it would answer itself directly and
	// the reply would miss the DNAT.
	sep.add("-s", hostCIDR(ep.addr.Addr()), "-j", MarkMasqChain)
	var affinity []string
	if p.affinitySeconds > 0 {
		affinity = []string{"-m", "recent", "--set", "--name", sepName, "--mask", "255.255.255.255", "--rsource"}
	}
	sep.add("-p", p.protocol, affinity, "-m", p.protocol, "-j", "DNAT", "--to-destination", ep.addr.String())
}

// probability returns 1/n as `-m statistic --probability` stores it (a
// 31-bit fraction) and iptables-save prints it: 1/3 is 0.33333333349, 1/2 is
// 0.50000000000.
func probability(n int) string {
	const scale = 1 << 31
	return fmt.Sprintf("%.11f", math.Round(scale/float64(n))/scale)
}

// hostCIDR is "10.96.0.1/32", as iptables-save prints a single address.
func hostCIDR(ip netip.Addr) string {
	return netip.PrefixFrom(ip, ip.BitLen()).String()
}

// comment is an -m comment match, quoted as iptables-save quotes it.
func comment(text string) []string {
	return []string{"-m", "comment", "--comment", quoteComment(text)}
}

// quoteComment quotes text unless it consists only of letters, digits, '-'
// and '_' (iptables' xtables_save_string).
func quoteComment(text string) string {
	safe := text != "" && strings.IndexFunc(text, func(r rune) bool {
		return !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0
	if safe {
		return text
	}
	return `"` + commentEscaper.Replace(text) + `"`
}

// commentEscaper escapes what iptables-save escapes inside quotes.
var commentEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `'`, `\'`)

// table accumulates the chains of one table, each with its rules, in the
// order the chains were first mentioned.
type table struct {
	name   iptables.Table
	chains []*chain
	byName map[string]*chain
}

type chain struct {
	name  string
	rules []string // complete "-A CHAIN ..." lines
}

func newTable(name iptables.Table) *table {
	return &table{name: name, byName: make(map[string]*chain)}
}

// merge adds a port's fragment: its rules in the chains t already has
// (the shared ones, declared by writeBaseChains) go at their end; its own
// chains are added as they are, shared with the fragment, which nothing
// changes once built.
func (t *table) merge(fragment *table) {
	for _, c := range fragment.chains {
		if shared, ok := t.byName[c.name]; ok {
			shared.rules = append(shared.rules, c.rules...)
			continue
		}
		t.chains = append(t.chains, c)
		t.byName[c.name] = c
	}
}

// chain returns the named chain, declaring it if it is new.
func (t *table) chain(name string) *chain {
	if c, ok := t.byName[name]; ok {
		return c
	}
	c := &chain{name: name}
	t.chains = append(t.chains, c)
	t.byName[name] = c
	return c
}

// add appends a rule; args are strings and string slices.
func (c *chain) add(args ...any) {
	var rule strings.Builder
	rule.Grow(160) // most rules fit
	rule.WriteString("-A ")
	rule.WriteString(c.name)
	for _, arg := range args {
		switch a := arg.(type) {
		case string:
			rule.WriteByte(' ')
			rule.WriteString(a)
		case []string:
			for _, s := range a {
				rule.WriteByte(' ')
				rule.WriteString(s)
			}
		default:
			panic(fmt.Sprintf("proxy: rule argument of type %T", arg))
		}
	}
	c.rules = append(c.rules, rule.String())
}

// Bytes is the iptables-restore input that writes the rule set: for each
// table (filter, then nat) the chain lines, the rules, then COMMIT.
func (rs *RuleSet) Bytes() []byte {
	return rs.restoreInput(rs.allChains(), nil, nil)
}

func (rs *RuleSet) String() string { return string(rs.Bytes()) }

// chainSet names chains by table.
type chainSet map[iptables.Table][]string

// allChains is every chain of the rule set.
func (rs *RuleSet) allChains() chainSet {
	return chainSet{iptables.TableFilter: rs.Chains(iptables.TableFilter), iptables.TableNAT: rs.Chains(iptables.TableNAT)}
}

// changedChains are the chains of rs that prev does not have, or has with
// other rules: what a partial sync must rewrite. A chain's name is a hash
// of what it serves, so an endpoint change touches only its Service's
// KUBE-SVC- chain and the KUBE-SEP- chains that come or go; KUBE-SERVICES
// changes only when a Service port, address or policy does.
func (rs *RuleSet) changedChains(prev *RuleSet) chainSet {
	changed := make(chainSet)
	for _, t := range []*table{rs.filter, rs.nat} {
		before := prev.table(t.name)
		for _, c := range t.chains {
			if old, ok := before.byName[c.name]; !ok || !slices.Equal(old.rules, c.rules) {
				changed[t.name] = append(changed[t.name], c.name)
			}
		}
	}
	return changed
}

// restoreInput renders the chains in write (declared, which creates or
// flushes them, then refilled), inserts the lines of inserts ("-I CHAIN 1
// ...", for jumps from built-in chains, which are never flushed) and
// deletes the chains in obsolete, in one iptables-restore --noflush input;
// chains in none of them are left as they are. A table with nothing to do
// is left out. Obsolete chains are
// declared (flushed) before they are deleted, and deleted after every
// chain that jumped to them has been rewritten: a chain that jumped to one
// has changed, so it is in write.
func (rs *RuleSet) restoreInput(write, obsolete chainSet, inserts map[iptables.Table][]string) []byte {
	var buf bytes.Buffer
	buf.Grow(rs.size(write))
	for _, t := range []*table{rs.filter, rs.nat} {
		if len(write[t.name]) == 0 && len(obsolete[t.name]) == 0 && len(inserts[t.name]) == 0 {
			continue
		}
		fmt.Fprintf(&buf, "*%s\n", t.name)
		for _, name := range write[t.name] {
			fmt.Fprintf(&buf, ":%s - [0:0]\n", name)
		}
		for _, name := range obsolete[t.name] {
			fmt.Fprintf(&buf, ":%s - [0:0]\n", name)
		}
		for _, name := range write[t.name] {
			for _, rule := range t.byName[name].rules {
				buf.WriteString(rule)
				buf.WriteByte('\n')
			}
		}
		for _, line := range inserts[t.name] {
			buf.WriteString(line)
			buf.WriteByte('\n')
		}
		for _, name := range obsolete[t.name] {
			fmt.Fprintf(&buf, "-X %s\n", name)
		}
		buf.WriteString("COMMIT\n")
	}
	return buf.Bytes()
}

// size estimates the length of the rendered chains, so that they are
// written into one allocation.
func (rs *RuleSet) size(chains chainSet) int {
	n := 0
	for _, t := range []*table{rs.filter, rs.nat} {
		for _, name := range chains[t.name] {
			n += 2 * (len(name) + 10)
			for _, rule := range t.byName[name].rules {
				n += len(rule) + 1
			}
		}
	}
	return n + 1024
}

// Chains returns the chains the rule set writes in table, in order.
func (rs *RuleSet) Chains(t iptables.Table) []string {
	var names []string
	for _, c := range rs.table(t).chains {
		names = append(names, c.name)
	}
	return names
}

// Rules returns the rules of one chain ("-A CHAIN ..." lines), nil if the
// rule set does not write that chain.
func (rs *RuleSet) Rules(t iptables.Table, chainName string) []string {
	if c, ok := rs.table(t).byName[chainName]; ok {
		return slices.Clone(c.rules)
	}
	return nil
}

// RuleCount is the number of rules the rule set writes in table.
func (rs *RuleSet) RuleCount(t iptables.Table) int {
	n := 0
	for _, c := range rs.table(t).chains {
		n += len(c.rules)
	}
	return n
}

func (rs *RuleSet) table(t iptables.Table) *table {
	if t == iptables.TableFilter {
		return rs.filter
	}
	if t == iptables.TableNAT {
		return rs.nat
	}
	return newTable(t)
}
