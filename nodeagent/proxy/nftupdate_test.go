package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"kubelite/api"
	"kubelite/nodeagent/proxy/nftables"
)

// nftEndpoints lists ready addresses of a Service's ports; an address
// "10.244.2.5@node2" is on node2, any other on node1 (this node).
func nftEndpoints(namespace, name string, ports []api.EndpointPort, addrs ...string) *api.Endpoints {
	eps := &api.Endpoints{ObjectMeta: api.ObjectMeta{Namespace: namespace, Name: name}}
	if len(addrs) == 0 {
		return eps
	}
	var addresses []api.EndpointAddress
	for _, a := range addrs {
		ip, node, found := strings.Cut(a, "@")
		if !found {
			node = "node1"
		}
		addresses = append(addresses, api.EndpointAddress{IP: ip, NodeName: api.Ptr(node)})
	}
	eps.Subsets = []api.EndpointSubset{{Addresses: addresses, Ports: ports}}
	return eps
}

func tcpEndpointPort(port int32) []api.EndpointPort {
	return []api.EndpointPort{{Port: port, Protocol: api.ProtocolTCP}}
}

// nftStep is one change to the cluster.
type nftStep struct {
	name   string
	change func(s *clusterState)
}

// nftScriptedSteps go through every kind of change the nftables mode
// handles, from an empty cluster.
func nftScriptedSteps() []nftStep {
	web := func(s *clusterState) *api.Service { return s.service("default/web") }
	return []nftStep{
		{"initial state", func(s *clusterState) {
			s.set(clusterIPService("default", "web", "10.96.0.20", tcpPort(80, 8080)),
				nftEndpoints("default", "web", tcpEndpointPort(8080), "10.244.1.2", "10.244.1.3", "10.244.2.2@node2"))
			s.set(clusterIPService("kube-system", "kube-dns", "10.96.0.10",
				api.ServicePort{Name: "dns", Protocol: api.ProtocolUDP, Port: 53, TargetPort: api.FromInt(53)},
				api.ServicePort{Name: "dns-tcp", Protocol: api.ProtocolTCP, Port: 53, TargetPort: api.FromInt(53)}), nil)
			s.set(clusterIPService("default", "empty", "10.96.0.21", tcpPort(80, 80)), nil)
			s.set(nodePortService("default", "np", "10.96.0.22", 80, 80, 30100),
				nftEndpoints("default", "np", tcpEndpointPort(80), "10.244.1.4", "10.244.2.4@node2"))
		}},
		{"endpoint added", func(s *clusterState) {
			s.set(web(s), nftEndpoints("default", "web", tcpEndpointPort(8080), "10.244.1.2", "10.244.1.3", "10.244.1.9", "10.244.2.2@node2"))
		}},
		{"endpoint removed", func(s *clusterState) {
			s.set(web(s), nftEndpoints("default", "web", tcpEndpointPort(8080), "10.244.1.2", "10.244.1.9", "10.244.2.2@node2"))
		}},
		{"endpoint replaced", func(s *clusterState) {
			s.set(web(s), nftEndpoints("default", "web", tcpEndpointPort(8080), "10.244.1.2", "10.244.1.10", "10.244.2.2@node2"))
		}},
		{"Service added", func(s *clusterState) {
			s.set(clusterIPService("shop", "cart", "10.96.0.30", udpPort(9000, 9000)),
				nftEndpoints("shop", "cart", []api.EndpointPort{{Port: 9000, Protocol: api.ProtocolUDP}}, "10.244.1.20", "10.244.2.20@node2"))
		}},
		{"port changed", func(s *clusterState) {
			svc := web(s)
			svc.Spec.Ports[0].Port = 8080
			s.set(svc, nil)
		}},
		{"node port added", func(s *clusterState) {
			svc := web(s)
			svc.Spec.Type = api.ServiceTypeNodePort
			svc.Spec.Ports[0].NodePort = 30200
			s.set(svc, nil)
		}},
		{"type LoadBalancer with an IP", func(s *clusterState) {
			svc := web(s)
			svc.Spec.Type = api.ServiceTypeLoadBalancer
			svc.Status.LoadBalancer.Ingress = []api.LoadBalancerIngress{{IP: "192.168.56.210"}}
			s.set(svc, nil)
		}},
		{"external IP added", func(s *clusterState) {
			svc := s.service("default/np")
			svc.Spec.ExternalIPs = []string{"192.168.56.50"}
			s.set(svc, nil)
		}},
		{"session affinity on", func(s *clusterState) {
			svc := web(s)
			svc.Spec.SessionAffinity = api.SessionAffinityClientIP
			api.Default(svc)
			s.set(svc, nil)
		}},
		{"affinity timeout changed", func(s *clusterState) {
			svc := web(s)
			svc.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds = api.Ptr[int32](90)
			s.set(svc, nil)
		}},
		{"endpoint replaced under affinity", func(s *clusterState) {
			s.set(web(s), nftEndpoints("default", "web", tcpEndpointPort(8080), "10.244.1.2", "10.244.1.11", "10.244.2.2@node2"))
		}},
		{"session affinity off", func(s *clusterState) {
			svc := web(s)
			svc.Spec.SessionAffinity = api.SessionAffinityNone
			svc.Spec.SessionAffinityConfig = nil
			s.set(svc, nil)
		}},
		{"externalTrafficPolicy Local", func(s *clusterState) {
			svc := web(s)
			svc.Spec.ExternalTrafficPolicy = api.TrafficPolicyLocal
			s.set(svc, nil)
		}},
		{"no local endpoint left", func(s *clusterState) {
			s.set(web(s), nftEndpoints("default", "web", tcpEndpointPort(8080), "10.244.2.2@node2", "10.244.2.3@node2"))
		}},
		{"internalTrafficPolicy Local without local endpoints", func(s *clusterState) {
			svc := s.service("default/np")
			svc.Spec.InternalTrafficPolicy = api.Ptr(api.TrafficPolicyLocal)
			s.set(svc, nftEndpoints("default", "np", tcpEndpointPort(80), "10.244.2.4@node2"))
		}},
		{"externalTrafficPolicy Cluster again", func(s *clusterState) {
			svc := web(s)
			svc.Spec.ExternalTrafficPolicy = api.TrafficPolicyCluster
			s.set(svc, nil)
		}},
		{"no endpoints at all", func(s *clusterState) {
			s.set(web(s), nftEndpoints("default", "web", nil))
		}},
		{"endpoints back", func(s *clusterState) {
			s.set(web(s), nftEndpoints("default", "web", tcpEndpointPort(8080), "10.244.1.2", "10.244.2.2@node2"))
		}},
		{"two Services claim one external IP", func(s *clusterState) {
			for _, name := range []string{"a", "b"} {
				svc := clusterIPService("dup", name, "10.96.0."+map[string]string{"a": "41", "b": "42"}[name], tcpPort(80, 80))
				svc.Spec.ExternalIPs = []string{"192.168.56.60"}
				s.set(svc, nftEndpoints("dup", name, tcpEndpointPort(80), "10.244.1."+map[string]string{"a": "41", "b": "42"}[name]))
			}
		}},
		{"the first of them goes", func(s *clusterState) {
			delete(s.services, "dup/a")
		}},
		{"Service removed", func(s *clusterState) {
			delete(s.services, "default/np")
			delete(s.endpoints, "default/np")
		}},
		{"cluster CIDR changed", func(s *clusterState) {
			s.cidr = netip.MustParsePrefix("10.200.0.0/16")
		}},
	}
}

// nftRandomSteps makes n random changes to a cluster of up to 8 Services,
// reproducibly for a seed.
func nftRandomSteps(seed uint64, n int) []nftStep {
	r := rand.New(rand.NewPCG(seed, 0))
	pick := func(options ...string) string { return options[r.IntN(len(options))] }
	name := func() string { return fmt.Sprintf("svc%d", r.IntN(8)) }
	ip := func(i int) string { return fmt.Sprintf("10.96.1.%d", i) }
	randomEndpoints := func(svcName string, port int32) *api.Endpoints {
		var addrs []string
		for i := range r.IntN(5) {
			// Node n's pods are in 10.244.n.0/24.
			node := 1 + r.IntN(2)
			addrs = append(addrs, fmt.Sprintf("10.244.%d.%d@node%d", node, 10+i*7+r.IntN(7), node))
		}
		return nftEndpoints("rand", svcName, tcpEndpointPort(port), addrs...)
	}
	steps := []nftStep{{"empty cluster", func(*clusterState) {}}}
	for i := range n {
		var step nftStep
		switch kind := r.IntN(9); kind {
		case 0, 1: // a Service added or replaced, with endpoints
			svcName, typ := name(), pick(api.ServiceTypeClusterIP, api.ServiceTypeNodePort, api.ServiceTypeLoadBalancer)
			port, lb := int32(80+r.IntN(3)), fmt.Sprintf("192.168.56.%d", 100+r.IntN(4))
			step = nftStep{"add " + svcName + " " + typ, func(s *clusterState) {
				n := int(svcName[3] - '0')
				svc := clusterIPService("rand", svcName, ip(n), tcpPort(port, 8080))
				if typ != api.ServiceTypeClusterIP {
					svc.Spec.Type = typ
					svc.Spec.Ports[0].NodePort = int32(30000 + n)
				}
				if typ == api.ServiceTypeLoadBalancer {
					svc.Status.LoadBalancer.Ingress = []api.LoadBalancerIngress{{IP: lb}}
				}
				api.Default(svc)
				s.set(svc, randomEndpoints(svcName, 8080))
			}}
		case 2: // a Service removed
			svcName := name()
			step = nftStep{"remove " + svcName, func(s *clusterState) {
				delete(s.services, "rand/"+svcName)
				delete(s.endpoints, "rand/"+svcName)
			}}
		default: // something about an existing Service changed
			svcName, what := name(), pick("endpoints", "endpoints", "affinity", "external-local", "internal-local", "external-ip", "port")
			seconds := []int32{10800, 60, 3600}[r.IntN(3)]
			step = nftStep{what + " of " + svcName, func(s *clusterState) {
				svc := s.services["rand/"+svcName]
				if svc == nil {
					return
				}
				svc = api.DeepCopy(svc)
				switch what {
				case "endpoints":
					s.set(svc, randomEndpoints(svcName, 8080))
					return
				case "affinity":
					if svc.Spec.SessionAffinity == api.SessionAffinityClientIP {
						svc.Spec.SessionAffinity, svc.Spec.SessionAffinityConfig = api.SessionAffinityNone, nil
					} else {
						svc.Spec.SessionAffinity = api.SessionAffinityClientIP
						svc.Spec.SessionAffinityConfig = &api.SessionAffinityConfig{ClientIP: &api.ClientIPConfig{TimeoutSeconds: api.Ptr(seconds)}}
					}
				case "external-local":
					svc.Spec.ExternalTrafficPolicy = map[bool]string{true: api.TrafficPolicyCluster, false: api.TrafficPolicyLocal}[svc.Spec.ExternalTrafficPolicy == api.TrafficPolicyLocal]
				case "internal-local":
					if svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == api.TrafficPolicyLocal {
						svc.Spec.InternalTrafficPolicy = api.Ptr(api.TrafficPolicyCluster)
					} else {
						svc.Spec.InternalTrafficPolicy = api.Ptr(api.TrafficPolicyLocal)
					}
				case "external-ip":
					if len(svc.Spec.ExternalIPs) > 0 {
						svc.Spec.ExternalIPs = nil
					} else {
						svc.Spec.ExternalIPs = []string{"192.168.56.77"}
					}
				case "port":
					svc.Spec.Ports[0].Port++
				}
				s.set(svc, nil)
			}}
		}
		step.name = fmt.Sprintf("%d: %s", i+1, step.name)
		steps = append(steps, step)
	}
	return steps
}

// TestNFTUpdateReachesTarget applies each step's transactions to an
// in-memory model of the kernel's table that checks what the kernel (and
// nft 1.0.6) check, and requires the model to end up equal to the new
// table.
func TestNFTUpdateReachesTarget(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []nftStep
	}{
		{"scripted", nftScriptedSteps()},
		{"random", nftRandomSteps(1, 200)},
		{"random-2", nftRandomSteps(2, 200)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := newClusterState()
			tc.steps[0].change(state)
			prev := BuildNFTRules(state.input())
			model := newNFTModel(prev)
			for _, step := range tc.steps[1:] {
				step.change(state)
				in := state.input()
				next := buildNFTRules(in, servicePorts(in), prev)
				change, cleanup, ok := next.update(prev)
				if !ok {
					t.Fatalf("%s: update refused", step.name)
				}
				for _, tx := range []*nftTransaction{change, cleanup} {
					if err := model.apply(tx); err != nil {
						t.Fatalf("%s: %v\ntransaction:\n%s", step.name, err, tx.Bytes())
					}
				}
				if got, want := canonicalNFT(model.render()), canonicalNFT(BuildNFTRules(in).Bytes()); got != want {
					t.Fatalf("%s: the table after the update differs from a fresh build:\n%s", step.name, lineDiff(want, got))
				}
				if next.RuleCount() != BuildNFTRules(in).RuleCount() {
					t.Fatalf("%s: rule count %d, fresh build %d", step.name, next.RuleCount(), BuildNFTRules(in).RuleCount())
				}
				prev = next
			}
		})
	}
}

// An unchanged state needs no transaction at all, and reuses every fragment.
func TestNFTUpdateWithoutChange(t *testing.T) {
	state := newClusterState()
	for _, step := range nftScriptedSteps()[:5] {
		step.change(state)
	}
	in := state.input()
	prev := BuildNFTRules(in)
	next := buildNFTRules(in, servicePorts(in), prev)
	change, cleanup, ok := next.update(prev)
	if !ok || !change.empty() || !cleanup.empty() {
		t.Fatalf("unchanged state: ok %v, change:\n%s\ncleanup:\n%s", ok, change.Bytes(), cleanup.Bytes())
	}
	for i, f := range next.fragments {
		if f != prev.fragments[i] {
			t.Errorf("fragment %v rebuilt", f.key)
		}
	}
}

// One replaced endpoint rewrites one Service chain, adds one endpoint chain
// and deletes another; nothing else.
func TestNFTUpdateEndpointChange(t *testing.T) {
	state := newClusterState()
	steps := nftScriptedSteps()
	steps[0].change(state)
	prev := BuildNFTRules(state.input())
	steps[3].change(state) // endpoint replaced: 10.244.1.3 → 10.244.1.10
	in := state.input()
	change, cleanup, _ := buildNFTRules(in, servicePorts(in), prev).update(prev)

	svc := nftServiceChainPrefix + nftPortName(ServicePortName{"default", "web", ""}, "tcp")
	added := nftEndpointChainPrefix + nftEndpointName(ServicePortName{"default", "web", ""}, "tcp", netip.MustParseAddrPort("10.244.1.10:8080"))
	gone := nftEndpointChainPrefix + nftEndpointName(ServicePortName{"default", "web", ""}, "tcp", netip.MustParseAddrPort("10.244.1.3:8080"))
	want := strings.Join([]string{
		"add chain ip kubelite " + added,
		"flush chain ip kubelite " + svc,
		"flush chain ip kubelite " + gone,
		"add chain ip kubelite " + svc + " { ip daddr 10.96.0.20 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade; " +
			"numgen random mod 3 0 goto " + nftEndpointChainPrefix + nftEndpointName(ServicePortName{"default", "web", ""}, "tcp", netip.MustParseAddrPort("10.244.1.2:8080")) + "; " +
			"numgen random mod 2 0 goto " + added + "; " +
			"goto " + nftEndpointChainPrefix + nftEndpointName(ServicePortName{"default", "web", ""}, "tcp", netip.MustParseAddrPort("10.244.2.2:8080")) + "; }",
		"add chain ip kubelite " + added + " { ip saddr 10.244.1.10 jump mark-for-masquerade; meta l4proto tcp dnat to 10.244.1.10:8080; }",
		"",
	}, "\n")
	if got := string(change.Bytes()); got != want {
		t.Errorf("change transaction:\n%s\nwant:\n%s", got, want)
	}
	if got, want := string(cleanup.Bytes()), "delete chain ip kubelite "+gone+"\n"; got != want {
		t.Errorf("cleanup transaction:\n%s\nwant:\n%s", got, want)
	}
	if change.written != 6 {
		t.Errorf("written = %d, want 6 (4 rules of the Service chain, 2 of the new endpoint's)", change.written)
	}
}

// TestNFTPartialSyncMatchesFull runs the steps through the dataplane with
// the real nft: partial syncs in one namespace, a full sync of the same
// state in another, after every step. Both tables must list the same,
// and the same as what the builder renders.
func TestNFTPartialSyncMatchesFull(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []nftStep
	}{
		{"scripted", nftScriptedSteps()},
		{"random", nftRandomSteps(3, 60)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			partialNFT, fullNFT := newNFTNamespace(t), newNFTNamespace(t)
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			partial := newNFTablesDataplane(partialNFT, logger)
			ctx := context.Background()
			state := newClusterState()
			for i, step := range tc.steps {
				step.change(state)
				in := state.input()
				stats, err := partial.sync(ctx, in, servicePorts(in), i == 0)
				if err != nil {
					t.Fatalf("%s: partial sync: %v", step.name, err)
				}
				if err := partial.tidy(ctx); err != nil {
					t.Fatalf("%s: tidy: %v", step.name, err)
				}
				if stats.full != (i == 0) {
					t.Errorf("%s: full = %v", step.name, stats.full)
				}
				if _, err := newNFTablesDataplane(fullNFT, logger).sync(ctx, in, servicePorts(in), true); err != nil {
					t.Fatalf("%s: full sync: %v", step.name, err)
				}
				got, want := canonicalNFT(listNFTTable(t, partialNFT)), canonicalNFT(listNFTTable(t, fullNFT))
				if got != want {
					t.Fatalf("%s: after partial syncs the table differs from a full sync:\n%s", step.name, lineDiff(want, got))
				}
				if built := canonicalNFT(BuildNFTRules(in).Bytes()); got != built {
					t.Fatalf("%s: the table differs from what the builder renders:\n%s", step.name, lineDiff(built, got))
				}
			}
		})
	}
}

// countingNFT counts the scripts applied, and fails them on demand.
type countingNFT struct {
	nftables.Interface
	applied [][]byte
	fail    bool
}

func (c *countingNFT) Apply(ctx context.Context, script []byte) error {
	if c.fail {
		return errors.New("injected failure")
	}
	c.applied = append(c.applied, script)
	return c.Interface.Apply(ctx, script)
}

func TestNFTDataplane(t *testing.T) {
	nft := &countingNFT{Interface: newNFTNamespace(t)}
	d := newNFTablesDataplane(nft, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	state := newClusterState()
	nftScriptedSteps()[0].change(state)
	in := state.input()
	rules := BuildNFTRules(in)

	if mode, backend := d.describe(); mode != ModeNFTables || backend != "nft" {
		t.Errorf("describe() = %s, %s", mode, backend)
	}
	if d.intact(ctx) {
		t.Error("intact before the first sync")
	}

	// A partial sync without a previous one is full.
	stats, err := d.sync(ctx, in, servicePorts(in), false)
	if err != nil {
		t.Fatal(err)
	}
	if !stats.full || stats.written != rules.RuleCount()+rules.ElementCount() || stats.total[nftTable] != rules.RuleCount() {
		t.Errorf("first sync: %+v, want full, %d written, %d in total", stats, rules.RuleCount()+rules.ElementCount(), rules.RuleCount())
	}
	if !d.intact(ctx) {
		t.Error("not intact after a sync")
	}

	// Nothing changed: nothing written, nft not even run.
	nft.applied = nil
	if stats, err := d.sync(ctx, in, servicePorts(in), false); err != nil || stats.full || stats.written != 0 || len(nft.applied) != 0 {
		t.Errorf("sync without change: %+v, %v, %d scripts", stats, err, len(nft.applied))
	}

	// Someone else flushes or deletes the table.
	for _, script := range []string{"flush table ip kubelite", "delete table ip kubelite"} {
		if err := nft.Interface.Apply(ctx, []byte(script+"\n")); err != nil {
			t.Fatal(err)
		}
		if d.intact(ctx) {
			t.Errorf("intact after %q", script)
		}
		if _, err := d.sync(ctx, in, servicePorts(in), true); err != nil {
			t.Fatal(err)
		}
		if !d.intact(ctx) {
			t.Errorf("not intact after the full sync that followed %q", script)
		}
	}

	// A failed sync makes the next one full.
	nftScriptedSteps()[1].change(state)
	in = state.input()
	nft.fail = true
	if _, err := d.sync(ctx, in, servicePorts(in), false); err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("sync with a failing nft: %v", err)
	}
	nft.fail = false
	if stats, err := d.sync(ctx, in, servicePorts(in), false); err != nil || !stats.full {
		t.Errorf("sync after a failure: %+v, %v; want a full sync", stats, err)
	}
	if got, want := canonicalNFT(listNFTTable(t, nft)), canonicalNFT(BuildNFTRules(in).Bytes()); got != want {
		t.Errorf("table after recovering:\n%s", lineDiff(want, got))
	}

	// The iptables mode removes the table at start; twice is harmless.
	for range 2 {
		if err := cleanupNFTables(ctx, nft); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nft.List(ctx, "table", "ip", "kubelite"); !nftables.IsNotFound(err) {
		t.Errorf("table still there after cleanupNFTables (err %v)", err)
	}
}

// nftModel is an in-memory table that applies transactions the way the
// kernel does, refusing what the kernel (or nft 1.0.6) would refuse: a
// reference to a chain or set that does not exist, deleting a chain or set
// still in use, or not empty, a second element for a key, a rule that uses
// a set its script did not declare.
type nftModel struct {
	chains map[string]*nftChain
	sets   map[string]*nftModelSet
}

type nftModelSet struct {
	set      nftSet
	elements map[string]nftElement
}

func newNFTModel(rs *NFTRuleSet) *nftModel {
	m := &nftModel{chains: make(map[string]*nftChain), sets: make(map[string]*nftModelSet)}
	for _, f := range rs.allFragments() {
		for _, c := range f.chains {
			m.chains[c.name] = &nftChain{name: c.name, hook: c.hook, rules: slices.Clone(c.rules)}
		}
		for _, s := range f.sets {
			m.sets[s.name] = &nftModelSet{set: *s, elements: make(map[string]nftElement)}
		}
	}
	for _, e := range rs.elements {
		m.sets[e.set].elements[e.key] = e
	}
	return m
}

func (m *nftModel) apply(tx *nftTransaction) error {
	declared := make(map[string]bool) // sets this script declared
	for _, c := range tx.commands {
		if err := m.run(c, declared); err != nil {
			return fmt.Errorf("%s %s %s: %w", c.verb, c.object, c.name, err)
		}
	}
	return nil
}

func (m *nftModel) run(c nftCommand, declared map[string]bool) error {
	switch c.verb + " " + c.object {
	case "add chain":
		ch := m.chains[c.name]
		if ch == nil {
			ch = &nftChain{name: c.name, hook: c.hook}
			m.chains[c.name] = ch
		} else if ch.hook != c.hook {
			return errors.New("chain exists with another hook")
		}
		for _, rule := range c.rules {
			if err := m.checkReferences(rule); err != nil {
				return err
			}
			for _, set := range nftSetReferences(rule) {
				if !declared[set] {
					return fmt.Errorf("rule uses set %s, which the script did not declare (nft 1.0.6 would not know it)", set)
				}
			}
		}
		ch.rules = append(ch.rules, c.rules...)
	case "flush chain":
		ch := m.chains[c.name]
		if ch == nil {
			return errors.New("no such chain")
		}
		ch.rules = nil
	case "delete chain":
		ch := m.chains[c.name]
		switch {
		case ch == nil:
			return errors.New("no such chain")
		case len(ch.rules) > 0:
			return errors.New("chain not empty")
		case m.referenced(c.name, nftJumpTargets):
			return errors.New("chain still in use")
		}
		delete(m.chains, c.name)
	case "add set", "add map":
		s := m.sets[c.name]
		if s == nil {
			s = &nftModelSet{set: nftSet{name: c.name, isMap: c.object == "map", spec: c.spec}, elements: make(map[string]nftElement)}
			m.sets[c.name] = s
		} else if !slices.Equal(s.set.spec, c.spec) || s.set.isMap != (c.object == "map") {
			return errors.New("set exists with another definition")
		}
		declared[c.name] = true
		for _, e := range c.elements {
			if err := m.checkReferences(e.verdict); err != nil {
				return err
			}
			if old, dup := s.elements[e.key]; dup && old != e {
				return fmt.Errorf("element %s exists", e.key)
			}
			s.elements[e.key] = e
		}
	case "delete set", "delete map":
		switch {
		case m.sets[c.name] == nil:
			return errors.New("no such set")
		case m.referenced(c.name, nftSetReferences):
			return errors.New("set still in use")
		}
		delete(m.sets, c.name)
	case "delete element":
		s := m.sets[c.name]
		if s == nil {
			return errors.New("no such set")
		}
		for _, e := range c.elements {
			if _, ok := s.elements[e.key]; !ok {
				return fmt.Errorf("no element %s", e.key)
			}
			delete(s.elements, e.key)
		}
	default:
		return errors.New("unknown command")
	}
	return nil
}

func (m *nftModel) checkReferences(text string) error {
	for _, target := range nftJumpTargets(text) {
		if m.chains[target] == nil {
			return fmt.Errorf("%q: no chain %s", text, target)
		}
	}
	for _, set := range nftSetReferences(text) {
		if m.sets[set] == nil {
			return fmt.Errorf("%q: no set %s", text, set)
		}
	}
	return nil
}

// referenced reports whether a rule or element names name, as refs finds
// names in it.
func (m *nftModel) referenced(name string, refs func(string) []string) bool {
	for _, ch := range m.chains {
		for _, rule := range ch.rules {
			if slices.Contains(refs(rule), name) {
				return true
			}
		}
	}
	for _, s := range m.sets {
		for _, e := range s.elements {
			if slices.Contains(refs(e.verdict), name) {
				return true
			}
		}
	}
	return false
}

// render writes the model as nft lists a table (in no particular order:
// compare it with canonicalNFT).
func (m *nftModel) render() []byte {
	var buf bytes.Buffer
	buf.WriteString("table ip kubelite {\n\tcomment " + nftQuote(nftTableComment) + "\n")
	for _, s := range m.sets {
		var elements []nftElement
		for _, e := range s.elements {
			elements = append(elements, e)
		}
		s.set.render(&buf, elements)
	}
	for _, c := range m.chains {
		c.render(&buf)
	}
	buf.WriteString("}\n")
	return buf.Bytes()
}

// A partial sync leaves the chains it stopped using flushed; tidy deletes
// them later, except one that a sync in between used again.
func TestNFTTidyDeletesUnusedChainsLater(t *testing.T) {
	nft := newNFTNamespace(t)
	d := newNFTablesDataplane(nft, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	sync := func(eps *api.Endpoints) {
		t.Helper()
		in := RuleInput{
			Services:  []*api.Service{clusterIPService("default", "web", "10.96.0.20", tcpPort(80, 8080))},
			Endpoints: []*api.Endpoints{eps},
			NodeName:  "node1",
		}
		if _, err := d.sync(ctx, in, servicePorts(in), false); err != nil {
			t.Fatal(err)
		}
	}
	web := ServicePortName{"default", "web", ""}
	chainA := nftEndpointChainPrefix + nftEndpointName(web, "tcp", netip.MustParseAddrPort("10.244.1.5:8080"))
	chainB := nftEndpointChainPrefix + nftEndpointName(web, "tcp", netip.MustParseAddrPort("10.244.2.6:8080"))
	listed := func(chain string) bool {
		return strings.Contains(string(listNFTTable(t, nft)), "chain "+chain+" {")
	}

	sync(endpointsOf("default", "web", api.ProtocolTCP, 8080, "10.244.1.5", "10.244.2.6"))
	sync(endpointsOf("default", "web", api.ProtocolTCP, 8080, "10.244.2.6")) // A goes
	sync(endpointsOf("default", "web", api.ProtocolTCP, 8080, "10.244.1.5")) // A is back, B goes
	if !listed(chainA) || !listed(chainB) {
		t.Fatalf("before tidy both endpoint chains should exist (B flushed):\n%s", listNFTTable(t, nft))
	}
	if err := d.tidy(ctx); err != nil {
		t.Fatal(err)
	}
	if !listed(chainA) {
		t.Errorf("tidy deleted %s, which is in use again", chainA)
	}
	if listed(chainB) {
		t.Errorf("tidy left %s, which nothing uses", chainB)
	}
	in := RuleInput{
		Services:  []*api.Service{clusterIPService("default", "web", "10.96.0.20", tcpPort(80, 8080))},
		Endpoints: []*api.Endpoints{endpointsOf("default", "web", api.ProtocolTCP, 8080, "10.244.1.5")},
		NodeName:  "node1",
	}
	if got, want := canonicalNFT(listNFTTable(t, nft)), canonicalNFT(BuildNFTRules(in).Bytes()); got != want {
		t.Errorf("table after tidy:\n%s", lineDiff(want, got))
	}
}
