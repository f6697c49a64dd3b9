package kubeletconn

import (
	"net/http"
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/streaming/pkg/httpstream/wsstream"
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

	// webSocketRequests is kube-apiserver's apiserver_websocket_streaming_requests_total, in its words.
	webSocketRequests = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Name: "websocket_streaming_requests_total",
		Help: "WebSocket session requests (exec, attach, portforward) by subresource and proxy_type: proxied_to_kubelet " +
			"when the kubelet reads the client's WebSocket itself (an older protocol, or a kubelet that declares " +
			"ExtendWebSocketsToKubelet); translated_at_exec_proxy when exec-proxy translates v5 or tunnels port-forward to the kubelet's SPDY.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"subresource", "proxy_type"})

	registerOnce sync.Once
)

// CountWebSocket counts a WebSocket session request of subresource by how it reaches the kubelet.
func CountWebSocket(req *http.Request, subresource string, translated bool) {
	if !wsstream.IsWebSocketRequest(req) {
		return
	}
	proxyType := "proxied_to_kubelet"
	if translated {
		proxyType = "translated_at_exec_proxy"
	}
	webSocketRequests.WithLabelValues(subresource, proxyType).Inc()
}

// RegisterMetrics adds the kubelet side's metrics to the legacy registry served on /metrics.
func RegisterMetrics() {
	registerOnce.Do(func() { legacyregistry.MustRegister(refusals, handshakes, webSocketRequests) })
}
