package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/nodeagent/proxy/iptables"
)

// BenchmarkSync measures, in a fresh node namespace, for N Services × 3
// endpoints (N = 1000; also 10000 with KUBELITE_BENCH_10K=1, slow on the
// nf_tables backend):
//
//   - build: BuildRules and rendering alone (no kernel);
//
//   - sync: one proxier sync (list, build, one iptables-restore);
//
//   - raw-restore: the baseline, one iptables-restore of the same text;
//
//   - endpoint-change: from an Endpoints change in the cache to the rules
//     that apply it being written, with the proxier running (MinSyncInterval
//     1 ms, so the figure is the sync, not the coalescing wait).
//
//     go test -run '^$' -bench Sync -benchtime 5x ./nodeagent/proxy/
func BenchmarkSync(b *testing.B) {
	sizes := []int{1000}
	if os.Getenv("KUBELITE_BENCH_10K") != "" {
		sizes = append(sizes, 10000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			benchmarkSync(b, n)
		})
	}
}

func benchmarkSync(b *testing.B, n int) {
	l := newLab(b, false)
	services, endpoints := syntheticServices(n)
	in := RuleInput{
		Services: services, Endpoints: endpoints, NodeName: "node1",
		ClusterCIDR: netip.MustParsePrefix(labPodCIDR),
	}
	rules := BuildRules(in)
	ctx := context.Background()

	host, err := NewHost(HostConfig{NetNS: nsPath(l.node)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(host.Close)
	servicesSource := newFakeSource(true, services...)
	endpointsSource := newFakeSource(true, endpoints...)
	cfg := Config{
		NodeName: "node1", ClusterCIDR: in.ClusterCIDR,
		MinSyncInterval: time.Millisecond, SyncPeriod: time.Hour, CanaryInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	p, err := New(cfg, Sources{Services: servicesSource, Endpoints: endpointsSource}, host)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.syncRules(ctx, true); err != nil { // the first, full sync
		b.Fatal(err)
	}

	b.Run("build", func(b *testing.B) {
		for b.Loop() {
			_ = BuildRules(in).Bytes()
		}
		b.ReportMetric(float64(rules.RuleCount(iptables.TableNAT)+rules.RuleCount(iptables.TableFilter)), "rules")
	})
	b.Run("sync", func(b *testing.B) {
		for b.Loop() {
			if err := p.syncRules(ctx, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-restore", func(b *testing.B) {
		text := rules.Bytes()
		for b.Loop() {
			if err := host.IPTables.Restore(ctx, text); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(text))/1024, "KiB")
	})
	b.Run("endpoint-change", func(b *testing.B) {
		synced := make(chan time.Time, 100)
		p.afterSync = func(started time.Time, err error) {
			if err != nil {
				b.Errorf("sync: %v", err)
			}
			synced <- started
		}
		runCtx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { _ = p.runLoopOnly(runCtx) })
		defer func() {
			cancel()
			wg.Wait()
			p.afterSync = nil
		}()
		<-synced // the loop's first sync
		i := 0
		for b.Loop() {
			i++
			changed := time.Now()
			eps := endpointsOf("bench", "svc-0", api.ProtocolTCP, 8080, "10.244.250.1", fmt.Sprintf("10.244.251.%d", i%250+1))
			endpointsSource.Set(eps)
			for started := range synced {
				if !started.Before(changed) {
					break
				}
			}
		}
	})
}

// runLoopOnly runs the sync loop without Run's one-time preparation (the
// benchmark has already synced once).
func (p *Proxier) runLoopOnly(ctx context.Context) error {
	p.syncLoop(ctx)
	return nil
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
		services = append(services, clusterIPService("bench", name, addr(serviceBase, i), tcpPort(80, 8080)))
		endpoints = append(endpoints, endpointsOf("bench", name, api.ProtocolTCP, 8080,
			addr(podBase, 3*i), addr(podBase, 3*i+1), addr(podBase, 3*i+2)))
	}
	return services, endpoints
}
