package kubeletconn

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

const namespace = "execproxy"

var (
	refusals = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Name: "kubelet_errors_total",
		Help: "Failures reaching kubelets, by reason (certificate, unreachable, refused, upgrade).", StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	handshakes = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Name: "kubelet_tls_handshakes_total",
		Help: "TLS handshakes with kubelets, by whether a session was resumed (true: the kubelet's certificate, verified before, was not sent again).", StabilityLevel: metrics.ALPHA,
	}, []string{"resumed"})

	registerOnce sync.Once
)

// RegisterMetrics adds the kubelet side's metrics to the legacy registry served on /metrics.
func RegisterMetrics() {
	registerOnce.Do(func() { legacyregistry.MustRegister(refusals, handshakes) })
}
