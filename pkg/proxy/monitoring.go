package proxy

import (
	"net/http"
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"github.com/exec-proxy/exec-proxy/pkg/proxy/kubeletconn"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

const namespace = "execproxy"

var (
	sessionsActive = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: namespace, Name: "sessions_active",
		Help: "Sessions currently upgraded and relaying.", StabilityLevel: metrics.ALPHA,
	})
	sessionsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Name: "sessions_total",
		Help: "Session attempts by kind and outcome (upgraded, refused, kubelet_error, throttled).", StabilityLevel: metrics.ALPHA,
	}, []string{"kind", "outcome"})
	sessionBytes = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Name: "session_bytes_total",
		Help: "Bytes relayed on client connections, by direction (in: from client, out: to client).", StabilityLevel: metrics.ALPHA,
	}, []string{"direction"})
	sessionDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: namespace, Name: "session_duration_seconds",
		Help:    "Duration of upgraded sessions by kind.",
		Buckets: []float64{0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600, 14400}, StabilityLevel: metrics.ALPHA,
	}, []string{"kind"})
	throttledTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Name: "throttled_total",
		Help: "Sessions refused by a limit, by the limit's name.", StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})

	webSocketSessions = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Name: "websocket_sessions_total",
		Help: "WebSocket session requests by kind and proxy_type: proxied_to_kubelet when the kubelet reads the " +
			"client's WebSocket itself (an old protocol, or a kubelet that declares ExtendWebSocketsToKubelet); " +
			"translated when exec-proxy translates v5 or tunnels port-forward to the kubelet's SPDY.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"kind", "proxy_type"})

	registerOnce sync.Once
)

// countWebSocket counts a WebSocket session request by how it reaches the kubelet.
func countWebSocket(req *http.Request, kind session.Kind, translated bool) {
	if !wsstream.IsWebSocketRequest(req) {
		return
	}
	proxyType := "proxied_to_kubelet"
	if translated {
		proxyType = "translated"
	}
	webSocketSessions.WithLabelValues(string(kind), proxyType).Inc()
}

// RegisterMetrics adds exec-proxy's metrics to the legacy registry served on /metrics.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(sessionsActive, sessionsTotal, sessionBytes, sessionDuration, throttledTotal, webSocketSessions)
		kubeletconn.RegisterMetrics()
	})
}

// sessionCounters are resolved once per process so the relay's hot path only adds.
type sessionCounters struct {
	in, out metrics.CounterMetric
}

var (
	countersOnce sync.Once
	counters     *sessionCounters
)

func byteCounters() *sessionCounters {
	countersOnce.Do(func() {
		counters = &sessionCounters{in: sessionBytes.WithLabelValues("in"), out: sessionBytes.WithLabelValues("out")}
	})
	return counters
}
