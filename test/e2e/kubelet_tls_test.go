//go:build e2e

package e2e

import "testing"

// TestKubeletTLSSessionsResume: after the first session to a kubelet, exec-proxy resumes its TLS
// session with the real kubelet (which then does not send its certificate again), on both protocols.
func TestKubeletTLSSessionsResume(t *testing.T) {
	before := execProxyMetrics(t)[`execproxy_kubelet_tls_handshakes_total{resumed="true"}`]
	for _, c := range clients {
		for range 2 {
			if res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "true"); res.code != 0 {
				t.Fatalf("%s: exec true: exit %d, stderr %s", c.name, res.code, res.stderr)
			}
		}
	}
	// Each client's second session at least was resumed: the first may have been the first ever.
	if resumed := execProxyMetrics(t)[`execproxy_kubelet_tls_handshakes_total{resumed="true"}`] - before; resumed < float64(len(clients)) {
		t.Errorf("%v of %d sessions resumed their TLS session with the kubelet, want at least %d", resumed, 2*len(clients), len(clients))
	}
}
