//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		restartExecProxy(t, "--kubelet-client-certificate=", "--kubelet-client-key=", "--kubelet-token-file="+tokenFile, "-v=4")
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
