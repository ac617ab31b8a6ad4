package proxy

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxier's Prometheus metrics, named after kube-proxy's
// (kubeproxy_sync_proxy_rules_duration_seconds and friends).
type metrics struct {
	info                *prometheus.GaugeVec
	syncDuration        prometheus.Histogram
	fullSyncDuration    prometheus.Histogram
	partialSyncDuration prometheus.Histogram
	rulesWritten        prometheus.Histogram
	lastSync            prometheus.Gauge
	syncFailures        prometheus.Counter
	rules               *prometheus.GaugeVec
	programmingLatency  prometheus.Histogram
}

func newMetrics() *metrics {
	const namespace, subsystem = "kubelite", "proxy"
	durationBuckets := prometheus.ExponentialBuckets(0.001, 2, 18) // 1 ms to 131 s
	return &metrics{
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name: "info",
			Help: "Always 1; the labels say how this node programs Services: mode (iptables, nftables) and backend (nft, legacy).",
		}, []string{"mode", "backend"}),
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name:    "sync_proxy_rules_duration_seconds",
			Help:    "How long one sync of the rules took (build, write, cleanup), full or partial.",
			Buckets: durationBuckets,
		}),
		fullSyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name:    "sync_full_proxy_rules_duration_seconds",
			Help:    "How long a full sync took: every rule rewritten (start, periodic, after a failure or a flush).",
			Buckets: durationBuckets,
		}),
		partialSyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name:    "sync_partial_proxy_rules_duration_seconds",
			Help:    "How long a partial sync took: only what changed since the last sync written.",
			Buckets: durationBuckets,
		}),
		rulesWritten: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name:    "sync_proxy_rules_written",
			Help:    "Rules (and nftables map elements) one sync sent to the kernel.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 11), // 1 to 1M
		}),
		lastSync: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name: "sync_proxy_rules_last_timestamp_seconds",
			Help: "When the rules were last applied successfully (Unix time).",
		}),
		syncFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name: "sync_proxy_rules_failures_total",
			Help: "Syncs that failed and will be retried.",
		}),
		rules: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name: "sync_proxy_rules_total",
			Help: "Rules on the node after the last successful sync, by table (filter and nat; kubelite in nftables mode).",
		}, []string{"table"}),
		programmingLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name:    "network_programming_duration_seconds",
			Help:    "From an Endpoints change seen by this node to the rules that implement it applied.",
			Buckets: durationBuckets,
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	if r == nil {
		return nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.info, m.syncDuration, m.fullSyncDuration, m.partialSyncDuration,
		m.rulesWritten, m.lastSync, m.syncFailures, m.rules, m.programmingLatency} {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}

// recordSync records a successful sync.
func (m *metrics) recordSync(elapsed time.Duration, stats syncStats) {
	m.syncDuration.Observe(elapsed.Seconds())
	if stats.full {
		m.fullSyncDuration.Observe(elapsed.Seconds())
	} else {
		m.partialSyncDuration.Observe(elapsed.Seconds())
	}
	m.rulesWritten.Observe(float64(stats.written))
	m.lastSync.SetToCurrentTime()
	for table, n := range stats.total {
		m.rules.WithLabelValues(table).Set(float64(n))
	}
}
