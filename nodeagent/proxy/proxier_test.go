package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"kubelite/api"
	"kubelite/nodeagent/proxy/iptables"
	"kubelite/nodeagent/proxy/iptables/iptablestest"
)

// harness runs a Proxier against fakes of everything it touches.
type harness struct {
	t         *testing.T
	services  *fakeSource[*api.Service]
	endpoints *fakeSource[*api.Endpoints]
	nodes     *fakeSource[*api.Node]
	ipt       *iptablestest.Fake
	conntrack *fakeConntrack
	sysctls   *fakeSysctls
	announcer *fakeAnnouncer
	registry  *prometheus.Registry
	proxier   *Proxier
	syncs     chan error // one value per sync attempt
}

func newHarness(t *testing.T, cfg Config, synced bool) *harness {
	t.Helper()
	h := &harness{
		t:         t,
		services:  newFakeSource[*api.Service](synced),
		endpoints: newFakeSource[*api.Endpoints](synced),
		nodes:     newFakeSource[*api.Node](true, readyNode("node1", true)),
		ipt:       iptablestest.New(),
		conntrack: &fakeConntrack{},
		sysctls:   &fakeSysctls{},
		announcer: &fakeAnnouncer{},
		registry:  prometheus.NewRegistry(),
		syncs:     make(chan error, 1000),
	}
	cfg.NodeName = "node1"
	cfg.ClusterCIDR = netip.MustParsePrefix("10.244.0.0/16")
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Registerer = h.registry
	host := &Host{IPTables: h.ipt, Conntrack: h.conntrack, Sysctls: h.sysctls, Addresses: h.announcer}
	p, err := New(cfg, Sources{Services: h.services, Endpoints: h.endpoints, Nodes: h.nodes}, host)
	if err != nil {
		t.Fatal(err)
	}
	p.afterSync = func(_ time.Time, err error) { h.syncs <- err }
	h.proxier = p
	return h
}

// start runs the proxier until the test ends.
func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := h.proxier.Run(ctx); err != nil {
			h.t.Errorf("Run: %v", err)
		}
	})
	h.t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// waitSync waits for the next sync attempt and returns its error.
func (h *harness) waitSync() error {
	h.t.Helper()
	select {
	case err := <-h.syncs:
		return err
	case <-time.After(5 * time.Second):
		h.t.Fatal("no sync within 5s")
		return nil
	}
}

func (h *harness) mustSync() {
	h.t.Helper()
	if err := h.waitSync(); err != nil {
		h.t.Fatalf("sync failed: %v", err)
	}
}

func (h *harness) expectNoSync(within time.Duration) {
	h.t.Helper()
	select {
	case err := <-h.syncs:
		h.t.Fatalf("unexpected sync (err=%v)", err)
	case <-time.After(within):
	}
}

func (h *harness) restoreCount() int {
	n := 0
	for _, call := range h.ipt.Calls() {
		if call == "restore" {
			n++
		}
	}
	return n
}

func (h *harness) natChains() []string { return h.ipt.Chains(iptables.TableNAT) }

func TestProxierWaitsForBothCaches(t *testing.T) {
	h := newHarness(t, Config{}, false)
	h.services.Set(clusterIPService("default", "web", "10.96.0.20", tcpPort(80, 8080)))
	h.services.markSynced()
	h.start()

	// Services are loaded, Endpoints are not: writing now would reject
	// every Service as having no endpoints.
	h.expectNoSync(300 * time.Millisecond)
	if n := h.restoreCount(); n != 0 {
		t.Fatalf("%d restores before the Endpoints cache synced", n)
	}

	h.endpoints.Set(endpointsOf("default", "web", api.ProtocolTCP, 8080, "10.244.1.5"))
	h.endpoints.markSynced()
	h.mustSync()
	if n := h.restoreCount(); n != 1 {
		t.Fatalf("first sync made %d restores, want exactly one", n)
	}
	restore := string(h.ipt.Restores()[0])
	if !strings.Contains(restore, "--to-destination 10.244.1.5:8080") {
		t.Errorf("first restore lacks the endpoint:\n%s", restore)
	}
	if h.sysctls.values["net/ipv4/conf/all/route_localnet"] != "1" || h.sysctls.values["net/ipv4/ip_forward"] != "1" ||
		h.sysctls.values["net/bridge/bridge-nf-call-iptables"] != "1" {
		t.Errorf("sysctls not set: %v", h.sysctls.values)
	}
}

func TestProxierEnsuresBaseJumpsLikeKubeProxy(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.start()
	h.mustSync()

	for chain, want := range map[string][]string{
		"PREROUTING":  {`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`},
		"OUTPUT":      {`-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`},
		"POSTROUTING": {`-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING`},
	} {
		if got := h.ipt.Rules(iptables.TableNAT, chain); !slices.Equal(got, want) {
			t.Errorf("nat %s = %q, want %q", chain, got, want)
		}
	}
	wantForward := []string{
		`-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD`,
		`-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
		`-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES`,
	}
	if got := h.ipt.Rules(iptables.TableFilter, "FORWARD"); !slices.Equal(got, wantForward) {
		t.Errorf("filter FORWARD =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantForward, "\n"))
	}
	for _, table := range []iptables.Table{iptables.TableNAT, iptables.TableFilter} {
		if !slices.Contains(h.ipt.Chains(table), CanaryChain) {
			t.Errorf("no canary chain in %s", table)
		}
	}
}

func TestProxierCoalescesChanges(t *testing.T) {
	h := newHarness(t, Config{MinSyncInterval: 300 * time.Millisecond}, true)
	h.services.Set(clusterIPService("default", "web", "10.96.0.20", tcpPort(80, 8080)))
	h.start()
	h.mustSync()

	// A burst of 50 changes right after a sync...
	for i := range 50 {
		h.endpoints.Set(endpointsOf("default", "web", api.ProtocolTCP, 8080, "10.244.1."+strconv.Itoa(10+i)))
	}
	// ...is applied by one sync, after the minimum interval.
	h.mustSync()
	h.expectNoSync(500 * time.Millisecond)
	if n := h.restoreCount(); n != 2 {
		t.Fatalf("%d restores, want 2 (the first sync and one for the whole burst)", n)
	}
	last := string(h.ipt.Restores()[1])
	if !strings.Contains(last, "--to-destination 10.244.1.59:8080") || strings.Contains(last, "10.244.1.58:8080") {
		t.Errorf("the coalesced sync did not write the final state:\n%s", last)
	}
}

func TestProxierIgnoresResyncsOfUnchangedObjects(t *testing.T) {
	h := newHarness(t, Config{}, true)
	svc := clusterIPService("default", "web", "10.96.0.20", tcpPort(80, 8080))
	h.services.Set(svc)
	h.start()
	h.mustSync()

	// An informer's periodic resync re-delivers the same object.
	for _, handler := range h.services.handlers {
		handler.OnUpdate(svc, svc)
	}
	h.expectNoSync(300 * time.Millisecond)
}

func TestProxierDeletesOnlyItsOwnStaleChains(t *testing.T) {
	h := newHarness(t, Config{}, true)
	ctx := context.Background()
	// Left by someone else, and by an earlier run of the agent.
	for _, chain := range []string{"CNI-HOSTPORT-DNAT", "KUBE-SOMETHING-ELSE", "KUBE-SVC-LEFTOVER00000000"} {
		if err := h.ipt.EnsureChain(ctx, iptables.TableNAT, chain); err != nil {
			t.Fatal(err)
		}
	}
	h.services.Set(clusterIPService("default", "web", "10.96.0.20", tcpPort(80, 8080)))
	h.endpoints.Set(endpointsOf("default", "web", api.ProtocolTCP, 8080, "10.244.1.5", "10.244.2.6"))
	h.start()
	h.mustSync()

	chains := h.natChains()
	if slices.Contains(chains, "KUBE-SVC-LEFTOVER00000000") {
		t.Error("a per-Service chain left by an earlier run survived the first sync")
	}
	for _, foreign := range []string{"CNI-HOSTPORT-DNAT", "KUBE-SOMETHING-ELSE"} {
		if !slices.Contains(chains, foreign) {
			t.Errorf("the proxier deleted %s, which is not its own", foreign)
		}
	}
	web := ServicePortName{"default", "web", ""}
	gone := EndpointChainName(web, "tcp", "10.244.2.6:8080")
	if !slices.Contains(chains, gone) {
		t.Fatalf("endpoint chain %s missing after the first sync", gone)
	}

	h.endpoints.Set(endpointsOf("default", "web", api.ProtocolTCP, 8080, "10.244.1.5"))
	h.mustSync()
	if slices.Contains(h.natChains(), gone) {
		t.Errorf("chain %s of a removed endpoint was not deleted", gone)
	}

	h.services.Delete("default/web")
	h.mustSync()
	for _, chain := range h.natChains() {
		if isPerServiceChain(chain) {
			t.Errorf("chain %s left after its Service was deleted", chain)
		}
	}
}

func TestProxierCanaryTriggersFullResync(t *testing.T) {
	h := newHarness(t, Config{CanaryInterval: 50 * time.Millisecond, SyncPeriod: time.Hour}, true)
	h.services.Set(clusterIPService("default", "web", "10.96.0.20", tcpPort(80, 8080)))
	h.endpoints.Set(endpointsOf("default", "web", api.ProtocolTCP, 8080, "10.244.1.5"))
	h.start()
	h.mustSync()
	h.expectNoSync(200 * time.Millisecond) // canary present: no sync

	// Someone runs `iptables -t nat -F; iptables -t nat -X`.
	h.ipt.Wipe(iptables.TableNAT)
	h.mustSync()
	if got := h.ipt.Rules(iptables.TableNAT, "PREROUTING"); len(got) != 1 {
		t.Errorf("jump rule not restored: %q", got)
	}
	svcChain := ServiceChainName(ServicePortName{"default", "web", ""}, "tcp")
	if got := h.ipt.Rules(iptables.TableNAT, svcChain); len(got) != 1 {
		t.Errorf("%s not restored: %q", svcChain, got)
	}
	if !slices.Contains(h.natChains(), CanaryChain) {
		t.Error("canary not re-created")
	}
}

func TestProxierRetriesAFailedSyncInFull(t *testing.T) {
	h := newHarness(t, Config{SyncPeriod: time.Hour}, true)
	h.services.Set(clusterIPService("default", "web", "10.96.0.20", tcpPort(80, 8080)))
	h.ipt.FailNextRestore(errors.New("iptables-restore: line 3 failed"))
	h.start()
	if err := h.waitSync(); err == nil {
		t.Fatal("the first sync should have failed")
	}
	h.mustSync() // the retry, about a second later
	if got := h.ipt.Rules(iptables.TableFilter, ServicesChain); len(got) != 1 || !strings.Contains(got[0], "has no endpoints") {
		t.Errorf("rules after retry: %q", got)
	}
	if got := counterValue(t, h.registry, "kubelite_proxy_sync_proxy_rules_failures_total"); got != 1 {
		t.Errorf("failures metric = %v, want 1", got)
	}
}

func TestProxierDeletesStaleUDPConntrackEntries(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.services.Set(clusterIPService("default", "dns", "10.96.0.53", udpPort(53, 5353)))
	h.endpoints.Set(endpointsOf("default", "dns", api.ProtocolUDP, 5353, "10.244.1.5", "10.244.2.6"))
	h.start()
	h.mustSync()
	if got := h.conntrack.deleted(); len(got) != 0 {
		t.Fatalf("first sync deleted conntrack entries: %v", got)
	}

	h.endpoints.Set(endpointsOf("default", "dns", api.ProtocolUDP, 5353, "10.244.1.5"))
	h.mustSync()
	want := []ConntrackFlow{{Protocol: "udp", OrigDst: netip.MustParseAddr("10.96.0.53"), OrigDstPort: 53, ReplySrc: netip.MustParseAddr("10.244.2.6")}}
	if got := h.conntrack.deleted(); !slices.Equal(got, want) {
		t.Errorf("deleted %v, want %v", got, want)
	}
}

func TestProxierAnnouncesLoadBalancerIPsItIsChosenFor(t *testing.T) {
	h := newHarness(t, Config{}, true)
	lb := clusterIPService("default", "lb", "10.96.0.30", tcpPort(80, 8080))
	lb.Spec.Type = api.ServiceTypeLoadBalancer
	lb.Status.LoadBalancer.Ingress = []api.LoadBalancerIngress{{IP: "192.168.56.200"}}
	h.services.Set(lb)
	h.start()
	h.mustSync()
	if got := h.announcer.announced(); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("192.168.56.200")}) {
		t.Fatalf("announced %v; node1 is the only ready node", got)
	}

	// node1 becomes not ready, node2 takes over.
	h.nodes.Set(readyNode("node2", true))
	h.mustSync()
	h.nodes.Set(readyNode("node1", false))
	h.mustSync()
	if got := h.announcer.announced(); len(got) != 0 {
		t.Errorf("a node that is not ready still announces %v", got)
	}
}

func TestProxierRecordsNetworkProgrammingLatency(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.services.Set(clusterIPService("default", "web", "10.96.0.20", tcpPort(80, 8080)))
	h.start()
	h.mustSync()
	h.endpoints.Set(endpointsOf("default", "web", api.ProtocolTCP, 8080, "10.244.1.5"))
	h.mustSync()

	families, err := h.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, family := range families {
		for _, m := range family.GetMetric() {
			if hist := m.GetHistogram(); hist != nil {
				got[family.GetName()] = hist.GetSampleCount()
			}
		}
	}
	if got["kubelite_proxy_network_programming_duration_seconds"] != 1 {
		t.Errorf("programming latency samples = %d, want 1", got["kubelite_proxy_network_programming_duration_seconds"])
	}
	if got["kubelite_proxy_sync_proxy_rules_duration_seconds"] < 2 {
		t.Errorf("sync duration samples = %d, want at least 2", got["kubelite_proxy_sync_proxy_rules_duration_seconds"])
	}
}

func TestNewRejectsIncompleteSetup(t *testing.T) {
	host := &Host{IPTables: iptablestest.New(), Conntrack: &fakeConntrack{}, Sysctls: &fakeSysctls{}}
	services, endpoints := newFakeSource[*api.Service](true), newFakeSource[*api.Endpoints](true)
	for name, tc := range map[string]struct {
		cfg  Config
		src  Sources
		host *Host
	}{
		"no node name":     {Config{}, Sources{Services: services, Endpoints: endpoints}, host},
		"no endpoints":     {Config{NodeName: "n"}, Sources{Services: services}, host},
		"no host":          {Config{NodeName: "n"}, Sources{Services: services, Endpoints: endpoints}, nil},
		"host without ipt": {Config{NodeName: "n"}, Sources{Services: services, Endpoints: endpoints}, &Host{}},
	} {
		if _, err := New(tc.cfg, tc.src, tc.host); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func counterValue(t *testing.T, registry *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, family := range families {
		if family.GetName() == name {
			return family.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
