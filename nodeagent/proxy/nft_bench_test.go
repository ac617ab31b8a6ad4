package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"

	"kubelite/nodeagent/proxy/nftables"
)

// BenchmarkNFTSync measures nftables mode for N Services × 3 endpoints (N =
// 1000; also 10000 with KUBELITE_BENCH_10K=1), in a fresh node namespace:
//
//	go test -run '^$' -bench NFTSync -benchtime 5x ./nodeagent/proxy/
//	KUBELITE_BENCH_10K=1 go test -run '^$' -bench 'NFTSync/services=10000' -benchtime 5x -timeout 1h ./nodeagent/proxy/
//
// Each dataplane figure sits next to its baseline, a raw `nft -f` of the
// same text. build is buildNFTRules alone (no kernel), render adds the
// full script's text, service-ports is what the Proxier computes before
// every sync. first-sync writes the table into an empty namespace;
// full-resync replaces it (the periodic full sync; raw-full-apply is its
// script alone, raw-full-flush kube-proxy's way, flushing the table instead
// of deleting it). endpoint-change replaces one endpoint of one Service,
// and new-service adds one Service (removed again on alternate
// iterations): partial syncs (servicePorts, build, diff, the change
// transaction). tidy-* is the deferred deletion of the chains the change
// left unused, a second later; build-* the dataplane's Go work in a
// partial sync; raw-* the change transaction alone.
func BenchmarkNFTSync(b *testing.B) {
	sizes := []int{1000}
	if os.Getenv("KUBELITE_BENCH_10K") != "" {
		sizes = append(sizes, 10000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			benchmarkNFTSync(b, n)
		})
	}
}

// newNFTBenchNode is a fresh node in nftables mode.
func newNFTBenchNode(b *testing.B) *benchNode {
	l := newLab(b, false)
	nft, err := nftables.New(nsPath(l.node))
	if err != nil {
		b.Fatal(err)
	}
	return &benchNode{b: b, dp: newNFTablesDataplane(nft, benchLogger), raw: nft.Apply}
}

func benchmarkNFTSync(b *testing.B, size int) {
	services, endpoints := syntheticServices(size)
	in := RuleInput{
		Services: services, Endpoints: endpoints, NodeName: "node1",
		ClusterCIDR: netip.MustParsePrefix(labPodCIDR),
	}
	ports := servicePorts(in)
	rules := buildNFTRules(in, ports, nil)
	full := rules.fullScript()

	b.Run("build", func(b *testing.B) {
		for b.Loop() {
			_ = buildNFTRules(in, ports, nil)
		}
		b.ReportMetric(float64(rules.RuleCount()), "rules")
		b.ReportMetric(float64(rules.ElementCount()), "elements")
	})
	b.Run("render", func(b *testing.B) {
		for b.Loop() {
			_ = buildNFTRules(in, ports, nil).fullScript()
		}
		b.ReportMetric(float64(len(full))/1024, "KiB")
	})
	b.Run("service-ports", func(b *testing.B) {
		// What the Proxier computes before every sync, in either mode.
		for b.Loop() {
			_ = servicePorts(in)
		}
	})
	b.Run("first-sync", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			node := newNFTBenchNode(b)
			b.StartTimer()
			node.sync(in, true)
		}
	})
	b.Run("raw-first-apply", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			node := newNFTBenchNode(b)
			b.StartTimer()
			node.write(full)
		}
	})

	// One node with the whole table in place for the rest.
	node := newNFTBenchNode(b)
	node.sync(in, true)
	b.Run("full-resync", func(b *testing.B) {
		for b.Loop() {
			node.sync(in, true)
		}
	})
	b.Run("raw-full-apply", func(b *testing.B) {
		for b.Loop() {
			node.write(full)
		}
	})
	b.Run("raw-full-flush", func(b *testing.B) {
		// kube-proxy's full sync: keep the table, empty every chain and
		// map, and add everything again (stale chains, which it finds by
		// listing, left aside: there are none here).
		script := []byte("add table ip kubelite\nflush table ip kubelite\n")
		for _, s := range rules.base.sets {
			script = append(script, "flush "+s.kind()+" ip kubelite "+s.name+"\n"...)
		}
		script = append(script, rules.Bytes()...)
		for b.Loop() {
			node.write(script)
		}
	})
	node.sync(in, true)

	// Two states a change moves between, and the partial transactions
	// that move the kernel from one to the other.
	alternate := func(b *testing.B, name string, changed RuleInput) {
		b.Run(name, func(b *testing.B) {
			states := []RuleInput{changed, in}
			i := 0
			var written int
			for b.Loop() {
				stats := node.sync(states[i%2], false)
				if i%2 == 0 {
					written = stats.written // the change itself, not its undoing
				}
				i++
			}
			if i%2 == 1 {
				node.sync(in, false)
			}
			b.ReportMetric(float64(written), "written")
		})
		b.Run("tidy-"+name, func(b *testing.B) {
			// The deferred deletion of what the change left unused,
			// which runs a second after the sync (tidyDelay).
			for b.Loop() {
				b.StopTimer()
				node.sync(changed, false)
				node.sync(in, false)
				b.StartTimer()
				if err := node.dp.tidy(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("build-"+name, func(b *testing.B) {
			// buildNFTRules with the previous table to reuse, and the
			// diff: the dataplane's own work in a partial sync.
			before := buildNFTRules(in, ports, nil)
			changedPorts := servicePorts(changed)
			for b.Loop() {
				after := buildNFTRules(changed, changedPorts, before)
				change, cleanup, _ := after.update(before)
				_, _ = change.Bytes(), cleanup.Bytes()
			}
		})
		b.Run("raw-"+name, func(b *testing.B) {
			// The change transaction alone: when the new rules are in
			// effect. (The cleanup that follows deletes what is now
			// unused.)
			before, after := BuildNFTRules(in), BuildNFTRules(changed)
			forward, forwardCleanup, _ := after.update(before)
			back, backCleanup, _ := before.update(after)
			scripts := [][]byte{forward.Bytes(), back.Bytes()}
			cleanups := [][]byte{forwardCleanup.Bytes(), backCleanup.Bytes()}
			i := 0
			for b.Loop() {
				node.write(scripts[i%2])
				b.StopTimer()
				if len(cleanups[i%2]) > 0 {
					node.write(cleanups[i%2])
				}
				b.StartTimer()
				i++
			}
			if i%2 == 1 {
				node.write(scripts[1])
				if len(cleanups[1]) > 0 {
					node.write(cleanups[1])
				}
			}
		})
	}
	endpointChanged, serviceAdded := benchChanges(in)
	alternate(b, "endpoint-change", endpointChanged)
	alternate(b, "new-service", serviceAdded)
}
