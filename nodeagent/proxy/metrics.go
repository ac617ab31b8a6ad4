package proxy

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"kubelite/nodeagent/proxy/iptables"
)

// metrics are the proxier's Prometheus metrics, named after kube-proxy's
// (kubeproxy_sync_proxy_rules_duration_seconds and friends).
type metrics struct {
	syncDuration       prometheus.Histogram
	lastSync           prometheus.Gauge
	syncFailures       prometheus.Counter
	rules              *prometheus.GaugeVec
	programmingLatency prometheus.Histogram
}

func newMetrics() *metrics {
	const namespace, subsystem = "kubelite", "proxy"
	return &metrics{
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name:    "sync_proxy_rules_duration_seconds",
			Help:    "How long one sync of the iptables rules took (build, iptables-restore, cleanup).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms to 33 s
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
			Name: "sync_proxy_rules_iptables_total",
			Help: "Rules written by the last successful sync, by table.",
		}, []string{"table"}),
		programmingLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name:    "network_programming_duration_seconds",
			Help:    "From an Endpoints change seen by this node to the rules that implement it applied.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18), // 1 ms to 131 s
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	if r == nil {
		return nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.syncDuration, m.lastSync, m.syncFailures, m.rules, m.programmingLatency} {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}

func (m *metrics) recordRules(rules *RuleSet) {
	for _, table := range []iptables.Table{iptables.TableFilter, iptables.TableNAT} {
		m.rules.WithLabelValues(string(table)).Set(float64(rules.RuleCount(table)))
	}
}
