package peers

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var (
	countsAge = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: "execproxy", Name: "peer_session_counts_age_seconds",
		Help:           "Age of the oldest session counts of another replica that the session caps count, as of the last asking (0: all fresh, or no other replica).",
		StabilityLevel: metrics.ALPHA,
	})
	countsFailures = metrics.NewCounter(&metrics.CounterOpts{
		Namespace: "execproxy", Name: "peer_session_counts_failures_total",
		Help:           "Askings of another replica's session counts that got no counts (unreachable, timed out, refused, unreadable).",
		StabilityLevel: metrics.ALPHA,
	})

	registerOnce sync.Once
)

// RegisterMetrics adds the peers' metrics to the legacy registry served on /metrics.
func RegisterMetrics() {
	registerOnce.Do(func() { legacyregistry.MustRegister(countsAge, countsFailures) })
}
