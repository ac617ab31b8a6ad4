package allocator

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the "scope" label: a value the Service asked for, or one picked
// for it (Kubernetes' clusterip_allocator metrics use the same words).
const (
	scopeStatic  = "static"
	scopeDynamic = "dynamic"
)

// metrics are the allocator's Prometheus metrics, labelled by range
// ("serviceips", "servicenodeports").
type metrics struct {
	allocations *prometheus.CounterVec // range, scope
	failures    *prometheus.CounterVec // range, scope, reason
	allocated   *prometheus.GaugeVec   // range: keys seen at the last snapshot
	available   *prometheus.GaugeVec   // range: free values at the last snapshot
}

// newMetrics builds the metrics and registers them with reg; with a nil reg
// they are kept but not exported.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		allocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kubelite", Subsystem: "service_allocator", Name: "allocations_total",
			Help: "Values allocated, by range and by scope (static: asked for; dynamic: picked).",
		}, []string{"range", "scope"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kubelite", Subsystem: "service_allocator", Name: "allocation_errors_total",
			Help: "Allocations refused or failed, by range, scope and reason.",
		}, []string{"range", "scope", "reason"}),
		allocated: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "kubelite", Subsystem: "service_allocator", Name: "allocated",
			Help: "Allocated values of the range at its last snapshot.",
		}, []string{"range"}),
		available: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "kubelite", Subsystem: "service_allocator", Name: "available",
			Help: "Values of the range free to hand out at its last snapshot.",
		}, []string{"range"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.allocations, m.failures, m.allocated, m.available} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering allocator metrics: %w", err)
		}
	}
	return m, nil
}
