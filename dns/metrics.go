package dns

import (
	"fmt"
	"time"

	miekg "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Where an answer came from, as the "source" label of the latency metric.
const (
	sourceCluster = "cluster" // the cluster zone, from the caches
	sourceForward = "forward" // an upstream resolver, or the forwarding cache
)

// metrics are the server's Prometheus metrics. Each Server has its own;
// nothing is registered globally.
type metrics struct {
	queries         *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	cacheHits       prometheus.Counter
	cacheMisses     prometheus.Counter
	upstreamFailure *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubelite_dns_queries_total",
			Help: "DNS queries answered, by query type and response code.",
		}, []string{"type", "rcode"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kubelite_dns_query_duration_seconds",
			Help:    "Time to answer a DNS query, by where the answer came from (cluster or forward).",
			Buckets: prometheus.ExponentialBuckets(25e-6, 4, 10), // 25 µs … 6.5 s
		}, []string{"source"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kubelite_dns_cache_hits_total",
			Help: "Forwarded queries answered from the cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kubelite_dns_cache_misses_total",
			Help: "Forwarded queries that had to ask an upstream resolver.",
		}),
		upstreamFailure: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubelite_dns_upstream_failures_total",
			Help: "Exchanges with an upstream resolver that failed (timeout, network error, SERVFAIL or REFUSED).",
		}, []string{"upstream"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.queries, m.duration, m.cacheHits, m.cacheMisses, m.upstreamFailure} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering DNS metrics: %w", err)
		}
	}
	return m, nil
}

// observe records one answered query.
func (m *metrics) observe(qtype uint16, rcode int, source string, took time.Duration) {
	m.queries.WithLabelValues(qtypeLabel(qtype), rcodeLabel(rcode)).Inc()
	m.duration.WithLabelValues(source).Observe(took.Seconds())
}

// qtypeLabel keeps the label's values few: the types clients ask for, and
// "other" for the rest, which anyone can send.
func qtypeLabel(qtype uint16) string {
	switch qtype {
	case miekg.TypeA, miekg.TypeAAAA, miekg.TypeSRV, miekg.TypePTR, miekg.TypeCNAME,
		miekg.TypeTXT, miekg.TypeSOA, miekg.TypeNS, miekg.TypeMX, miekg.TypeHTTPS,
		miekg.TypeSVCB, miekg.TypeANY:
		return miekg.TypeToString[qtype]
	}
	return "other"
}

func rcodeLabel(rcode int) string {
	if s, ok := miekg.RcodeToString[rcode]; ok {
		return s
	}
	return "other"
}
