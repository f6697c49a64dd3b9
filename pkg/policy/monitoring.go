package policy

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var (
	reloadsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "execproxy", Subsystem: "session_policy", Name: "reloads_total",
		Help: "Reads of a changed session policy file, by result (success, error).", StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	lastReloadFailed = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: "execproxy", Subsystem: "session_policy", Name: "last_reload_failed",
		Help: "1 while the session policy file does not parse and the last good policy is in force.", StabilityLevel: metrics.ALPHA,
	})
	rulesInForce = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: "execproxy", Subsystem: "session_policy", Name: "rules",
		Help: "Rules of the session policy in force.", StabilityLevel: metrics.ALPHA,
	})
	refusalsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "execproxy", Subsystem: "session_policy", Name: "refusals_total",
		Help: "Sessions the session policy refused, by rule.", StabilityLevel: metrics.ALPHA,
	}, []string{"rule"})

	registerOnce sync.Once
)

// RegisterMetrics adds the session policy's metrics to the legacy registry served on /metrics.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(reloadsTotal, lastReloadFailed, rulesInForce, refusalsTotal)
	})
}
