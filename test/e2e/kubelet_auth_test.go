//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exec-proxy/exec-proxy/internal/testcert"
)

// serviceAccountToken creates service account name in execproxy-system, bound to exec-proxy's
// ClusterRole if bind, and returns a file with a token for it.
func serviceAccountToken(t *testing.T, name string, bind bool) string {
	t.Helper()
	admin(t, "", "-n", "execproxy-system", "create", "serviceaccount", name)
	t.Cleanup(func() { admin(t, "", "-n", "execproxy-system", "delete", "serviceaccount", name, "--ignore-not-found") })
	if bind {
		admin(t, "", "create", "clusterrolebinding", name, "--clusterrole=execproxy:server", "--serviceaccount=execproxy-system:"+name)
		t.Cleanup(func() { admin(t, "", "delete", "clusterrolebinding", name, "--ignore-not-found") })
	}
	token := admin(t, "", "-n", "execproxy-system", "create", "token", name, "--duration=1h")
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte(strings.TrimSpace(token)), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestKubeletTokenAuth: with a service account token instead of a client certificate, the real
// kubelets authenticate exec-proxy by TokenReview and authorize nodes/proxy by SubjectAccessReview,
// on every protocol; a service account without nodes/proxy is refused by the kubelet.
func TestKubeletTokenAuth(t *testing.T) {
	t.Run("bound service account", func(t *testing.T) {
		tokenFile := serviceAccountToken(t, "e2e-kubelet-token", true)
		// -v=10: the upgrade-aware proxy logs the headers of its kubelet request from -v=6.
		restartExecProxy(t, "--kubelet-client-certificate=", "--kubelet-client-key=", "--kubelet-token-file="+tokenFile, "-v=10")
		for _, c := range clients {
			res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "echo", "token-ok")
			if res.code != 0 || res.stdout != "token-ok\n" {
				t.Errorf("%s: exit %d, stdout %q, stderr %s", c.name, res.code, res.stdout, res.stderr)
			}
		}
		// Read before the cleanup restarts exec-proxy and starts its log anew.
		token, _ := os.ReadFile(tokenFile)
		if leaked := secretsIn([]string{string(token)}); len(leaked) > 0 {
			t.Errorf("the kubelet token appears in %v", leaked)
		}
		if log := execProxyLog(t); !strings.Contains(log, "WARNING: exec-proxy authenticates to kubelets with a bearer token") {
			t.Error("no start warning that kubelets get a bearer token a node can replay")
		}
	})
	t.Run("service account without nodes/proxy", func(t *testing.T) {
		restartExecProxy(t, "--kubelet-client-certificate=", "--kubelet-client-key=",
			"--kubelet-token-file="+serviceAccountToken(t, "e2e-kubelet-token-unbound", false))
		want := "system:serviceaccount:execproxy-system:e2e-kubelet-token-unbound"
		for _, c := range clients {
			res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "echo", "reached")
			if res.code == 0 || strings.Contains(res.stdout, "reached") || !strings.Contains(res.stderr, want) {
				t.Errorf("%s: want the kubelet's refusal of %s, got exit %d, stdout %q, stderr %s", c.name, want, res.code, res.stdout, res.stderr)
			}
		}
	})
}

// execProxyLog is exec-proxy's log since it last started.
func execProxyLog(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(clusterDir(), "logs", "exec-proxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// kubeletClientCert writes a client certificate for user cn, signed by the cluster CA (which the
// local kubelets trust for client authentication), and its key; it returns the two files.
func kubeletClientCert(t *testing.T, cn string) (certFile, keyFile string) {
	t.Helper()
	ca := testcert.LoadCA(t, filepath.Join(clusterDir(), "pki", "ca.crt"), filepath.Join(clusterDir(), "pki", "ca.key"))
	return testcert.WriteFiles(t, ca.Sign(t, testcert.Leaf{CommonName: cn, Client: true}))
}

// TestKubeletClientCertificateDeployRBAC: deploy/'s kubelet-client-rbac.yaml, applied for real, lets
// the real kubelets take exec-proxy's client certificate for the user execproxy:kubelet-client
// (authenticated by the kubelet, authorized by SubjectAccessReview), on every protocol, with no
// token warning; a certificate for a user it does not bind is refused by the kubelet.
func TestKubeletClientCertificateDeployRBAC(t *testing.T) {
	rbac := filepath.Join(repoRoot(), "deploy", "kubelet-client-rbac.yaml")
	admin(t, "", "apply", "-f", rbac)
	t.Cleanup(func() { admin(t, "", "delete", "-f", rbac, "--ignore-not-found") })
	t.Run("bound user", func(t *testing.T) {
		cert, key := kubeletClientCert(t, "execproxy:kubelet-client")
		restartExecProxy(t, "--kubelet-client-certificate="+cert, "--kubelet-client-key="+key)
		for _, c := range clients {
			res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "echo", "cert-ok")
			if res.code != 0 || res.stdout != "cert-ok\n" {
				t.Errorf("%s: exit %d, stdout %q, stderr %s", c.name, res.code, res.stdout, res.stderr)
			}
		}
		if strings.Contains(execProxyLog(t), "bearer token") {
			t.Error("exec-proxy warns of a bearer token while it uses a client certificate")
		}
	})
	t.Run("unbound user", func(t *testing.T) {
		cert, key := kubeletClientCert(t, "execproxy:kubelet-client-unbound")
		restartExecProxy(t, "--kubelet-client-certificate="+cert, "--kubelet-client-key="+key)
		for _, c := range clients {
			res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "echo", "reached")
			if res.code == 0 || strings.Contains(res.stdout, "reached") || !strings.Contains(res.stderr, "execproxy:kubelet-client-unbound") {
				t.Errorf("%s: want the kubelet's refusal of execproxy:kubelet-client-unbound, got exit %d, stdout %q, stderr %s", c.name, res.code, res.stdout, res.stderr)
			}
		}
	})
}
