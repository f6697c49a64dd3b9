//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exec-proxy/exec-proxy/internal/testcert"
)

// TestBypassesClosed: with deploy/components/deny-direct-exec on, every way around exec-proxy that
// admission can close is refused on kube-apiserver's own path, as a user would try it, with a
// message saying what to do; the break-glass group gets through each; exec-proxy is unaffected.
func TestBypassesClosed(t *testing.T) {
	dir := withComponent(t, "deny-direct-exec", false)
	admin(t, "", "apply", "-k", dir)
	t.Cleanup(func() { admin(t, "", "delete", "-k", dir, "--wait") })
	glass := breakGlassKubeconfig(t)
	ephemeral := `{"spec":{"ephemeralContainers":[{"name":"e2e-debugger","image":"registry.local/busybox:local","imagePullPolicy":"Never","command":["sh"]}]}}`
	cases := []struct {
		name    string
		args    []string
		refusal string
	}{
		{"exec", []string{"-n", "demo", "exec", "demo", "-c", "main", "--", "true"}, "direct exec is off in this cluster"},
		// kubectl debug's request, dry run: an ephemeral container cannot be taken off a pod again.
		{"ephemeral container", []string{"-n", "demo", "patch", "pod", "demo", "--subresource=ephemeralcontainers", "--type=strategic", "-p", ephemeral, "--dry-run=server"},
			"ephemeral containers are added through exec-proxy in this cluster"},
		{"node proxy to exec", []string{"get", "--raw", "/api/v1/nodes/127.0.0.1/proxy/exec/demo/demo/main?command=id&output=1"},
			"the node proxy reaches only the kubelet's read-only paths"},
		{"node proxy, dotted", []string{"get", "--raw", "/api/v1/nodes/127.0.0.1/proxy/metrics/../exec/demo/demo/main?command=id&output=1"},
			"the node proxy reaches only the kubelet's read-only paths"},
		{"pods/proxy", []string{"get", "--raw", "/api/v1/namespaces/demo/pods/demo:8080/proxy/"}, "direct pods/proxy is off in this cluster"},
		{"services/proxy", []string{"get", "--raw", "/api/v1/namespaces/demo/services/demo:8080/proxy/"}, "direct services/proxy is off in this cluster"},
	}
	eventually(t, 30*time.Second, "kube-apiserver to enforce the policies", func() bool {
		res := clients[1].kubectl(t, viaAPIServer, "admin", "", cases[len(cases)-1].args...)
		return strings.Contains(res.stderr, cases[len(cases)-1].refusal)
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := clients[1].kubectl(t, viaAPIServer, "admin", "", tc.args...)
			if res.code == 0 || !strings.Contains(res.stderr, tc.refusal) || !strings.Contains(res.stderr, "execproxy:break-glass") {
				t.Errorf("as admin: exit %d, stderr %q; want a refusal saying %q and naming the break-glass group", res.code, res.stderr, tc.refusal)
			}
			broke := clients[1].run(t, glass, "", tc.args...)
			if strings.Contains(broke.stderr, tc.refusal) {
				t.Errorf("the break-glass group was refused: %s", broke.stderr)
			}
		})
	}
	t.Run("node proxy read-only paths", func(t *testing.T) {
		// The policy lets it through; kube-apiserver then refuses to proxy to a loopback node
		// address ("address not allowed"), which is all the local cluster's nodes have.
		for _, path := range []string{"healthz", "metrics", "stats/summary", "containerLogs/demo/demo/main"} {
			res := clients[1].kubectl(t, viaAPIServer, "admin", "", "get", "--raw", "/api/v1/nodes/127.0.0.1/proxy/"+path)
			if strings.Contains(res.stderr, "the node proxy reaches only") {
				t.Errorf("%s refused by the policy: %s", path, res.stderr)
			}
		}
	})
	t.Run("exec-proxy unaffected", func(t *testing.T) {
		m := marker(t)
		for _, c := range clients[:2] {
			if res := c.kubectl(t, viaExecProxy, "ns-user", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "echo", m); res.code != 0 || res.stdout != m+"\n" {
				t.Errorf("%s through exec-proxy: exit %d %q %s", c.name, res.code, res.stdout, res.stderr)
			}
		}
	})
}

// breakGlassKubeconfig is a kubeconfig straight to kube-apiserver for user admin in the
// execproxy:break-glass group, with a client certificate signed by the cluster CA.
func breakGlassKubeconfig(t *testing.T) string {
	t.Helper()
	ca := testcert.LoadCA(t, filepath.Join(clusterDir(), "pki", "ca.crt"), filepath.Join(clusterDir(), "pki", "ca.key"))
	cert, key := testcert.WriteFiles(t, ca.Sign(t, testcert.Leaf{CommonName: "admin", Organization: []string{"execproxy:break-glass"}, Client: true}))
	data, err := os.ReadFile(kubeconfig("admin-direct"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer(filepath.Join(clusterDir(), "pki", "user-admin.crt"), cert, filepath.Join(clusterDir(), "pki", "user-admin.key"), key).Replace(string(data))
	if cfg == string(data) {
		t.Fatalf("admin-direct.kubeconfig names no user-admin.crt:\n%s", data)
	}
	path := filepath.Join(t.TempDir(), "break-glass.kubeconfig")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
