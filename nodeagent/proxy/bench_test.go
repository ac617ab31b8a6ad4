package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"testing"

	"kubelite/api"
	"kubelite/nodeagent/proxy/iptables"
)

// BenchmarkSync measures iptables mode, for N Services × 3 endpoints (N =
// 1000; also 10000 with KUBELITE_BENCH_10K=1, slow on the nf_tables
// backend), on each iptables backend, in a fresh node namespace:
//
//	go test -run '^$' -bench Sync -benchtime 5x ./nodeagent/proxy/
//	KUBELITE_BENCH_10K=1 go test -run '^$' -bench 'Sync/.*/services=10000' -benchtime 1x -timeout 2h ./nodeagent/proxy/
//
// Each proxier figure sits next to its baseline, a raw iptables-restore of
// the same text. build is BuildRules and rendering alone (no kernel).
// first-sync puts every rule into an empty namespace. full-resync rewrites
// every rule in place (the periodic full sync; what every change cost
// before partial syncs). endpoint-change replaces one Service's endpoint,
// and new-service adds one Service (removed again on alternate
// iterations): partial syncs (list, build, diff, one restore).
func BenchmarkSync(b *testing.B) {
	sizes := []int{1000}
	if os.Getenv("KUBELITE_BENCH_10K") != "" {
		sizes = append(sizes, 10000)
	}
	for _, backend := range []iptables.Backend{iptables.BackendNFT, iptables.BackendLegacy} {
		for _, n := range sizes {
			b.Run(fmt.Sprintf("backend=%s/services=%d", backend, n), func(b *testing.B) {
				benchmarkSync(b, backend, n)
			})
		}
	}
}

// benchNode is one node namespace with a dataplane of either mode, and
// the raw command (iptables-restore, nft -f) its figures are compared with.
type benchNode struct {
	b   *testing.B
	dp  dataplane
	raw func(context.Context, []byte) error
	// memo, as the Proxier keeps one: only changed Services' ports are
	// worked out again.
	memo portsMemo
}

// newBenchNode is a fresh node in iptables mode, with backend.
func newBenchNode(b *testing.B, backend iptables.Backend) *benchNode {
	l := newLab(b, false)
	ipt, err := iptables.NewWithBackend(nsPath(l.node), backend)
	if err != nil {
		b.Fatal(err)
	}
	return &benchNode{b: b, dp: newIPTablesDataplane(ipt, benchLogger), raw: ipt.Restore}
}

var benchLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

func (n *benchNode) sync(in RuleInput, full bool) syncStats {
	var ports []servicePort
	ports, n.memo = servicePortsMemo(in, n.memo)
	stats, err := n.dp.sync(context.Background(), in, ports, full)
	if err != nil {
		n.b.Fatal(err)
	}
	return stats
}

// write is the baseline: text through the raw command.
func (n *benchNode) write(text []byte) {
	if err := n.raw(context.Background(), text); err != nil {
		n.b.Fatal(err)
	}
}

func benchmarkSync(b *testing.B, backend iptables.Backend, size int) {
	services, endpoints := syntheticServices(size)
	in := RuleInput{
		Services: services, Endpoints: endpoints, NodeName: "node1",
		ClusterCIDR: netip.MustParsePrefix(labPodCIDR),
	}
	rules := BuildRules(in)
	full := rules.Bytes()

	b.Run("build", func(b *testing.B) {
		for b.Loop() {
			_ = BuildRules(in).Bytes()
		}
		b.ReportMetric(float64(rules.RuleCount(iptables.TableNAT)+rules.RuleCount(iptables.TableFilter)), "rules")
	})
	b.Run("first-sync", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			node := newBenchNode(b, backend)
			b.StartTimer()
			node.sync(in, true)
		}
	})
	b.Run("raw-first-restore", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			node := newBenchNode(b, backend)
			b.StartTimer()
			node.write(full)
		}
	})

	// One node with every rule in place for the rest.
	node := newBenchNode(b, backend)
	node.sync(in, true)
	b.Run("full-resync", func(b *testing.B) {
		for b.Loop() {
			node.sync(in, true)
		}
	})
	b.Run("raw-full-restore", func(b *testing.B) {
		for b.Loop() {
			node.write(full)
		}
	})

	// Two states a change moves between, and the partial restore texts
	// that move the kernel from one to the other.
	alternate := func(b *testing.B, name string, changed RuleInput) {
		b.Run(name, func(b *testing.B) {
			states := []RuleInput{changed, in}
			i := 0
			var written int
			for b.Loop() {
				written = node.sync(states[i%2], false).written
				i++
			}
			if i%2 == 1 {
				node.sync(in, false)
			}
			b.ReportMetric(float64(written), "rules-written")
		})
		b.Run("raw-"+name, func(b *testing.B) {
			before, after := BuildRules(in), BuildRules(changed)
			texts := [][]byte{
				after.restoreInput(after.changedChains(before), obsoleteChains(perServiceChains(before), after), nil),
				before.restoreInput(before.changedChains(after), obsoleteChains(perServiceChains(after), before), nil),
			}
			i := 0
			for b.Loop() {
				node.write(texts[i%2])
				i++
			}
			if i%2 == 1 {
				node.write(texts[1])
			}
		})
	}
	endpointChanged, serviceAdded := benchChanges(in)
	alternate(b, "endpoint-change", endpointChanged)
	alternate(b, "new-service", serviceAdded)
}

// benchChanges are the two changes both modes' benchmarks measure, made to
// the synthetic state in: one endpoint of svc-0 replaced (10.244.0.3 by
// 10.244.250.1), and one Service with 3 endpoints added.
func benchChanges(in RuleInput) (endpointChanged, serviceAdded RuleInput) {
	endpointChanged = in
	endpointChanged.Endpoints = append([]*api.Endpoints{
		changedObject(endpointsOf("bench", "svc-0", api.ProtocolTCP, 8080, "10.244.0.1", "10.244.0.2", "10.244.250.1")),
	}, in.Endpoints[1:]...)

	serviceAdded = in
	serviceAdded.Services = append(append([]*api.Service(nil), in.Services...),
		clusterIPService("bench", "new", "10.96.250.1", tcpPort(80, 8080)))
	serviceAdded.Endpoints = append(append([]*api.Endpoints(nil), in.Endpoints...),
		endpointsOf("bench", "new", api.ProtocolTCP, 8080, "10.244.252.1", "10.244.252.2", "10.244.252.3"))
	return endpointChanged, serviceAdded
}

// syntheticServices makes n ClusterIP Services with 3 ready endpoints each.
func syntheticServices(n int) ([]*api.Service, []*api.Endpoints) {
	var services []*api.Service
	var endpoints []*api.Endpoints
	addr := func(base netip.Addr, i int) string {
		b := base.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		v += uint32(i)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
	}
	serviceBase, podBase := netip.MustParseAddr("10.96.1.0"), netip.MustParseAddr("10.244.0.1")
	for i := range n {
		name := fmt.Sprintf("svc-%d", i)
		svc := clusterIPService("bench", name, addr(serviceBase, i), tcpPort(80, 8080))
		eps := endpointsOf("bench", name, api.ProtocolTCP, 8080, addr(podBase, 3*i), addr(podBase, 3*i+1), addr(podBase, 3*i+2))
		svc.ResourceVersion, eps.ResourceVersion = "1", "1" // as stored
		services, endpoints = append(services, svc), append(endpoints, eps)
	}
	return services, endpoints
}

// changedObject gives a replacement object the resourceVersion a store
// would: newer than the synthetic objects'.
func changedObject[PT api.Object](obj PT) PT {
	obj.GetObjectMeta().ResourceVersion = "2"
	return obj
}
