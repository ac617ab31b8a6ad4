package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"testing"

	"kubelite/api"
	"kubelite/nodeagent/proxy/iptables"
	"kubelite/nodeagent/proxy/iptables/iptablestest"
)

// clusterState is a cluster as the tests change it step by step.
type clusterState struct {
	services  map[string]*api.Service
	endpoints map[string]*api.Endpoints
	cidr      netip.Prefix
}

func newClusterState() *clusterState {
	return &clusterState{
		services:  make(map[string]*api.Service),
		endpoints: make(map[string]*api.Endpoints),
		cidr:      netip.MustParsePrefix("10.244.0.0/16"),
	}
}

func (s *clusterState) input() RuleInput {
	return RuleInput{
		Services:    slices.Collect(maps.Values(s.services)),
		Endpoints:   slices.Collect(maps.Values(s.endpoints)),
		NodeName:    "node1",
		ClusterCIDR: s.cidr,
		LocalDNS:    netip.MustParseAddrPort("10.244.1.1:53"),
	}
}

func (s *clusterState) setService(svc *api.Service) { s.services[svc.Namespace+"/"+svc.Name] = svc }
func (s *clusterState) setEndpoints(eps *api.Endpoints) {
	s.endpoints[eps.Namespace+"/"+eps.Name] = eps
}

// set stores a Service and, unless eps is nil, its Endpoints.
func (s *clusterState) set(svc *api.Service, eps *api.Endpoints) {
	s.setService(svc)
	if eps != nil {
		s.setEndpoints(eps)
	}
}

// service returns a copy of a stored Service to change and set again.
func (s *clusterState) service(key string) *api.Service {
	return api.DeepCopy(s.services[key])
}

// scenarioStep is one change to the cluster; small says whether a partial
// sync should write only a few rules for it.
type scenarioStep struct {
	name   string
	change func(*clusterState)
	small  bool
}

// syncScenario is a run of every kind of change a Service goes through,
// starting from 20 Services with 3 endpoints each.
func syncScenario() (*clusterState, []scenarioStep) {
	state := newClusterState()
	for i := range 20 {
		name := fmt.Sprintf("svc-%d", i)
		state.setService(clusterIPService("default", name, fmt.Sprintf("10.96.1.%d", i+1), tcpPort(80, 8080)))
		state.setEndpoints(endpointsOf("default", name, api.ProtocolTCP, 8080,
			fmt.Sprintf("10.244.1.%d", 3*i+1), fmt.Sprintf("10.244.2.%d", 3*i+2), fmt.Sprintf("10.244.3.%d", 3*i+3)))
	}
	svc := func(s *clusterState, name string) *api.Service { return s.service("default/" + name) }
	steps := []scenarioStep{
		{"an endpoint is added", func(s *clusterState) {
			s.setEndpoints(endpointsOf("default", "svc-1", api.ProtocolTCP, 8080, "10.244.1.4", "10.244.2.5", "10.244.3.6", "10.244.3.99"))
		}, true},
		{"an endpoint is removed", func(s *clusterState) {
			s.setEndpoints(endpointsOf("default", "svc-2", api.ProtocolTCP, 8080, "10.244.1.7"))
		}, true},
		{"a Service loses all its endpoints", func(s *clusterState) {
			s.setEndpoints(endpointsOf("default", "svc-3", api.ProtocolTCP, 8080))
		}, false},
		{"and gets them back", func(s *clusterState) {
			s.setEndpoints(endpointsOf("default", "svc-3", api.ProtocolTCP, 8080, "10.244.1.10"))
		}, false},
		{"a Service is added", func(s *clusterState) {
			s.setService(clusterIPService("default", "new", "10.96.2.1", tcpPort(80, 8080), udpPort(53, 5353)))
			s.setEndpoints(endpointsOf("default", "new", api.ProtocolTCP, 8080, "10.244.4.1"))
		}, false},
		{"a Service becomes a NodePort", func(s *clusterState) {
			n := svc(s, "svc-4")
			n.Spec.Type, n.Spec.Ports[0].NodePort = api.ServiceTypeNodePort, 31000
			s.setService(n)
		}, false},
		{"a Service becomes a LoadBalancer with an IP", func(s *clusterState) {
			n := svc(s, "svc-5")
			n.Spec.Type, n.Spec.Ports[0].NodePort = api.ServiceTypeLoadBalancer, 31001
			n.Status.LoadBalancer.Ingress = []api.LoadBalancerIngress{{IP: "192.168.56.240"}}
			s.setService(n)
		}, false},
		{"session affinity is turned on", func(s *clusterState) {
			n := svc(s, "svc-6")
			n.Spec.SessionAffinity = api.SessionAffinityClientIP
			s.setService(n)
		}, false},
		{"traffic policies become Local", func(s *clusterState) {
			n := svc(s, "svc-4")
			n.Spec.ExternalTrafficPolicy = api.TrafficPolicyLocal
			n.Spec.InternalTrafficPolicy = api.Ptr(api.TrafficPolicyLocal)
			s.setService(n)
		}, false},
		{"a port number changes", func(s *clusterState) {
			n := svc(s, "svc-7")
			n.Spec.Ports[0].Port = 8081
			s.setService(n)
		}, false},
		{"a Service is deleted", func(s *clusterState) {
			delete(s.services, "default/svc-8")
			delete(s.endpoints, "default/svc-8")
		}, false},
		{"nothing changes", func(*clusterState) {}, true},
	}
	return state, steps
}

// savedRules reads our chains back from ipt: chain → rules, for both
// tables. Chains are compared as sets: the order in which the kernel lists
// them depends on when each was created, not on what it does.
func savedRules(t *testing.T, ipt iptables.Interface) map[string][]string {
	t.Helper()
	out := make(map[string][]string)
	for _, table := range []iptables.Table{iptables.TableFilter, iptables.TableNAT} {
		saved, err := ipt.Save(context.Background(), table)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range parseSave(saved) {
			for _, chain := range st.order {
				out[st.name+"/"+chain] = st.rules[chain]
			}
		}
	}
	return out
}

// checkPartialEqualsFull walks the scenario with partial syncs on one node
// and, after each step, compares the rules with a full sync of the same
// state on a fresh node.
func checkPartialEqualsFull(t *testing.T, newIPTables func() iptables.Interface) {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	state, steps := syncScenario()
	sync := func(dp *iptablesDataplane, full bool) syncStats {
		t.Helper()
		in := state.input()
		stats, err := dp.sync(ctx, in, servicePorts(in), full)
		if err != nil {
			t.Fatal(err)
		}
		return stats
	}
	partial := newIPTablesDataplane(newIPTables(), logger)
	first := sync(partial, true)
	if !first.full || first.written != first.total["filter"]+first.total["nat"]+len(baseJumps) {
		t.Fatalf("first sync: %+v, want a full one writing every rule and the jumps into them", first)
	}
	for _, step := range steps {
		step.change(state)
		stats := sync(partial, false)
		if stats.full {
			t.Errorf("%s: the sync was full", step.name)
		}
		total := stats.total["filter"] + stats.total["nat"]
		if step.small && stats.written > 8 { // one KUBE-SVC- chain and one KUBE-SEP- chain
			t.Errorf("%s: a partial sync wrote %d of %d rules", step.name, stats.written, total)
		}
		fresh := newIPTables()
		sync(newIPTablesDataplane(fresh, logger), true)
		got, want := savedRules(t, partial.ipt), savedRules(t, fresh)
		for _, chain := range slices.Sorted(maps.Keys(want)) {
			if !slices.Equal(got[chain], want[chain]) {
				t.Errorf("%s: chain %s after partial syncs:\n%q\nafter a full sync:\n%q", step.name, chain, got[chain], want[chain])
			}
		}
		for chain := range got {
			if _, ok := want[chain]; !ok {
				t.Errorf("%s: chain %s left by partial syncs, absent after a full sync", step.name, chain)
			}
		}
	}
}

func TestPartialSyncEqualsFullSync(t *testing.T) {
	checkPartialEqualsFull(t, func() iptables.Interface { return iptablestest.New() })
}

// The same against the kernel, with each iptables backend, in namespaces
// the test creates.
func TestPartialSyncEqualsFullSyncInTheKernel(t *testing.T) {
	for _, backend := range []iptables.Backend{iptables.BackendNFT, iptables.BackendLegacy} {
		t.Run(string(backend), func(t *testing.T) {
			checkPartialEqualsFull(t, func() iptables.Interface {
				l := newLab(t, false)
				ipt, err := iptables.NewWithBackend(nsPath(l.node), backend)
				if err != nil {
					t.Fatal(err)
				}
				return ipt
			})
		})
	}
}

func TestPartialSyncWritesOnlyWhatChanged(t *testing.T) {
	ctx := context.Background()
	fake := iptablestest.New()
	dp := newIPTablesDataplane(fake, slog.New(slog.NewTextHandler(io.Discard, nil)))
	state, _ := syncScenario()
	sync := func(full bool) {
		t.Helper()
		in := state.input()
		if _, err := dp.sync(ctx, in, servicePorts(in), full); err != nil {
			t.Fatal(err)
		}
	}
	sync(true)
	state.setEndpoints(endpointsOf("default", "svc-1", api.ProtocolTCP, 8080, "10.244.1.4", "10.244.2.5"))
	sync(false)

	restores := fake.Restores()
	last := string(restores[len(restores)-1])
	svc1 := ServicePortName{"default", "svc-1", ""}
	want := "*nat\n" +
		":" + ServiceChainName(svc1, "tcp") + " - [0:0]\n" +
		":" + EndpointChainName(svc1, "tcp", "10.244.3.6:8080") + " - [0:0]\n" +
		"-A " + ServiceChainName(svc1, "tcp") + " -m statistic --mode random --probability 0.50000000000 -j " + EndpointChainName(svc1, "tcp", "10.244.1.4:8080") + "\n" +
		"-A " + ServiceChainName(svc1, "tcp") + " -j " + EndpointChainName(svc1, "tcp", "10.244.2.5:8080") + "\n" +
		"-X " + EndpointChainName(svc1, "tcp", "10.244.3.6:8080") + "\n" +
		"COMMIT\n"
	if last != want {
		t.Errorf("partial restore input:\n%s\nwant:\n%s", last, want)
	}

	// A failed restore leaves the kernel unknown: the next sync is full.
	fake.FailNextRestore(fmt.Errorf("iptables-restore: line 3 failed"))
	state.setEndpoints(endpointsOf("default", "svc-1", api.ProtocolTCP, 8080, "10.244.1.4"))
	in := state.input()
	if _, err := dp.sync(ctx, in, servicePorts(in), false); err == nil {
		t.Fatal("the sync should have failed")
	}
	stats, err := dp.sync(ctx, in, servicePorts(in), false)
	if err != nil || !stats.full {
		t.Errorf("sync after a failure: full=%v err=%v, want a full sync", stats.full, err)
	}
}

// A full sync of a node whose rules are intact reads each table once and
// writes nothing: no restore, and no jump or canary asked for one by one
// (a command costs as much as a whole table on the legacy backend). One
// chain changed behind the proxier's back is rewritten, alone.
func TestFullSyncRepairsOnlyWhatDiffers(t *testing.T) {
	ctx := context.Background()
	fake := iptablestest.New()
	dp := newIPTablesDataplane(fake, slog.New(slog.NewTextHandler(io.Discard, nil)))
	state, _ := syncScenario()
	in := state.input()
	sync := func() syncStats {
		t.Helper()
		stats, err := dp.sync(ctx, in, servicePorts(in), true)
		if err != nil {
			t.Fatal(err)
		}
		return stats
	}
	sync()
	for _, table := range canaryTables {
		if !slices.Contains(fake.Chains(table), CanaryChain) {
			t.Errorf("the first full sync did not create the %s canary", table)
		}
	}

	before := len(fake.Calls())
	if stats := sync(); stats.written != 0 {
		t.Errorf("full sync of an intact node wrote %d rules", stats.written)
	}
	if got := fake.Calls()[before:]; !slices.Equal(got, []string{"save filter", "save nat"}) {
		t.Errorf("full sync of an intact node ran %q, want two saves", got)
	}

	// Someone deletes one KUBE-SEP chain's rules.
	svc1 := ServicePortName{"default", "svc-1", ""}
	sep := EndpointChainName(svc1, "tcp", "10.244.1.4:8080")
	if err := fake.Restore(ctx, []byte("*nat\n:"+sep+" - [0:0]\nCOMMIT\n")); err != nil {
		t.Fatal(err)
	}
	if stats := sync(); stats.written != 2 {
		t.Errorf("full sync after one chain was flushed wrote %d rules, want its 2", stats.written)
	}
	if got := fake.Rules(iptables.TableNAT, sep); len(got) != 2 {
		t.Errorf("%s not repaired: %q", sep, got)
	}
}

// Reusing the rules of unchanged ports gives, byte for byte, what building
// everything afresh gives: after every step of the scenario, and when the
// cluster CIDR (which every port's rules depend on) changes.
func TestBuildRulesReusesUnchangedPortsExactly(t *testing.T) {
	state, steps := syncScenario()
	in := state.input()
	prev := buildRules(in, servicePorts(in), nil)
	for _, step := range steps {
		step.change(state)
		in := state.input()
		reused := buildRules(in, servicePorts(in), prev)
		if got, want := reused.String(), BuildRules(in).String(); got != want {
			t.Fatalf("%s: rules built reusing the previous ones differ:\n%s", step.name, lineDiff(want, got))
		}
		prev = reused
	}
	in.ClusterCIDR = netip.MustParsePrefix("10.200.0.0/16")
	if got, want := buildRules(in, servicePorts(in), prev).String(), BuildRules(in).String(); got != want {
		t.Fatalf("after a cluster CIDR change:\n%s", lineDiff(want, got))
	}
}
