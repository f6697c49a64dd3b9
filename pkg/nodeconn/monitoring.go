package nodeconn

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// What exec-proxy presents to kubelets (the type label of execproxy_kubelet_credential).
const (
	credentialClientCertificate = "client-certificate"
	credentialToken             = "token"
	credentialNone              = "none"
)

var (
	kubeletCredential = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: "execproxy", Name: "kubelet_credential",
		Help: "1 for the credential exec-proxy presents to kubelets: client-certificate, or token (a bearer token, " +
			"which every kubelet it is sent to, and root on that node, can replay to any other kubelet).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"type"})
	registerOnce sync.Once
)

// RegisterMetrics adds the kubelet transport's metrics to the legacy registry served on /metrics.
func RegisterMetrics() {
	registerOnce.Do(func() { legacyregistry.MustRegister(kubeletCredential) })
}

// setCredentialMetric registers the metric first: an unregistered one drops what is set.
func setCredentialMetric(credential string) {
	RegisterMetrics()
	for _, c := range []string{credentialClientCertificate, credentialToken, credentialNone} {
		v := 0.0
		if c == credential {
			v = 1
		}
		kubeletCredential.WithLabelValues(c).Set(v)
	}
}
