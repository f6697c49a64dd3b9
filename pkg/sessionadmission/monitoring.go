package sessionadmission

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var (
	admissionDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: "execproxy", Subsystem: "session_admission", Name: "duration_seconds",
		Help:           "Time the cluster's admission took for a session, by result (allowed, denied).",
		Buckets:        []float64{0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 0.5, 1, 5, 10, 30},
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})

	registerOnce sync.Once
)

// RegisterMetrics adds the session admission's metrics to the legacy registry served on /metrics.
func RegisterMetrics() {
	registerOnce.Do(func() { legacyregistry.MustRegister(admissionDuration) })
}
