//go:build e2e

package e2e

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func repoRoot() string { return filepath.Join(clusterDir(), "..") }

// TestDeployManifests: kube-apiserver accepts every manifest of deploy/ (server-side dry run), and
// with the deny-direct-exec component kube-apiserver's own exec is refused while exec through
// exec-proxy goes on.
func TestDeployManifests(t *testing.T) {
	t.Run("server-side dry run", func(t *testing.T) {
		out := admin(t, "", "apply", "-k", filepath.Join(repoRoot(), "deploy"), "--dry-run=server")
		for _, want := range []string{"deployment.apps/exec-proxy", "apiservice.apiregistration.k8s.io/v1alpha1.execproxy.dev",
			"poddisruptionbudget.policy/exec-proxy", "rolebinding.rbac.authorization.k8s.io/execproxy:auth-reader",
			"clusterrole.rbac.authorization.k8s.io/execproxy:user"} {
			if !strings.Contains(out, want) {
				t.Errorf("dry run did not name %s:\n%s", want, out)
			}
		}
		rb := admin(t, "", "kustomize", filepath.Join(repoRoot(), "deploy"))
		if !strings.Contains(rb, "namespace: kube-system") {
			t.Error("the extension-apiserver-authentication-reader RoleBinding is not in kube-system")
		}
	})
	t.Run("cert-manager component", func(t *testing.T) {
		// Built only: the local cluster has no cert-manager to take its kinds.
		dir := withComponent(t, "cert-manager", true)
		out := admin(t, "", "kustomize", dir)
		for _, want := range []string{"cert-manager.io/inject-ca-from: execproxy-system/exec-proxy-serving", "kind: Certificate", "secretName: exec-proxy-serving"} {
			if !strings.Contains(out, want) {
				t.Errorf("the build lacks %q", want)
			}
		}
	})
	t.Run("servicemonitor component", func(t *testing.T) {
		out := admin(t, "", "kustomize", withComponent(t, "servicemonitor", true))
		if !strings.Contains(out, "kind: ServiceMonitor") || !strings.Contains(out, "execproxy:metrics-reader") {
			t.Errorf("the build lacks the ServiceMonitor or its ClusterRole:\n%s", out)
		}
	})
	t.Run("deny-direct-exec", func(t *testing.T) {
		dir := withComponent(t, "deny-direct-exec", false)
		admin(t, "", "apply", "-k", dir)
		t.Cleanup(func() { admin(t, "", "delete", "-k", dir, "--wait") })
		m := marker(t)
		eventually(t, 30*time.Second, "kube-apiserver to enforce the policy", func() bool {
			res := clients[1].kubectl(t, viaAPIServer, "admin", "", "exec", "demo", "-c", "main", "--", "echo", m)
			return res.code != 0 && strings.Contains(res.stderr, "direct exec is off in this cluster")
		})
		for _, c := range clients {
			if res := c.kubectl(t, viaExecProxy, "ns-user", "", "exec", "demo", "-c", "main", "--", "echo", m); res.code != 0 || res.stdout != m+"\n" {
				t.Errorf("%s through exec-proxy with the policy on: exit %d %q %s", c.name, res.code, res.stdout, res.stderr)
			}
		}
	})
}

// TestDeployCerts: hack/deploy-certs.sh stores a serving certificate valid for the Service's name,
// the kubelet CA, and fills the APIService's caBundle with the CA that signed it.
func TestDeployCerts(t *testing.T) {
	certs := t.TempDir()
	cmd := exec.Command(filepath.Join(repoRoot(), "hack", "deploy-certs.sh"), filepath.Join(clusterDir(), "pki", "ca.crt"))
	cmd.Env = append(os.Environ(), "CERT_DIR="+certs, "KUBECONFIG="+kubeconfig("cluster-admin"), "KUBECTL="+clients[1].path())
	out, err := cmd.CombinedOutput()
	// The script pointed the local cluster's APIService at its own CA: put the cluster's back.
	t.Cleanup(func() { restartExecProxy(t) })
	t.Cleanup(func() {
		admin(t, "", "-n", "execproxy-system", "delete", "secret/exec-proxy-serving", "configmap/kubelet-ca", "--ignore-not-found")
	})
	if err != nil {
		t.Fatalf("deploy-certs.sh: %v\n%s", err, out)
	}
	ca, err := os.ReadFile(filepath.Join(certs, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if got := admin(t, "", "get", "apiservice", "v1alpha1.execproxy.dev", "-o", "jsonpath={.spec.caBundle}"); got != base64.StdEncoding.EncodeToString(ca) {
		t.Errorf("caBundle is not the script's CA")
	}
	crtB64 := admin(t, "", "-n", "execproxy-system", "get", "secret", "exec-proxy-serving", "-o", "jsonpath={.data.tls\\.crt}")
	crtPEM, _ := base64.StdEncoding.DecodeString(crtB64)
	block, _ := pem.Decode(crtPEM)
	caBlock, _ := pem.Decode(ca)
	if block == nil || caBlock == nil {
		t.Fatalf("unreadable certificates: %q", crtB64)
	}
	crt, err1 := x509.ParseCertificate(block.Bytes)
	caCrt, err2 := x509.ParseCertificate(caBlock.Bytes)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCrt)
	if _, err := crt.Verify(x509.VerifyOptions{DNSName: "exec-proxy.execproxy-system.svc", Roots: pool}); err != nil {
		t.Errorf("the serving certificate does not verify for the Service's name: %v", err)
	}
	if got := admin(t, "", "-n", "execproxy-system", "get", "configmap", "kubelet-ca", "-o", "jsonpath={.data.ca\\.crt}"); !strings.Contains(got, "BEGIN CERTIFICATE") {
		t.Errorf("kubelet-ca ConfigMap: %q", got)
	}
}

// withComponent writes a kustomization of deploy/components/name, on top of deploy/ if withBase.
func withComponent(t *testing.T, name string, withBase bool) string {
	dir := t.TempDir()
	base, err := filepath.Rel(dir, filepath.Join(repoRoot(), "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	kustomization := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\ncomponents: [" + filepath.Join(base, "components", name) + "]\n"
	if withBase {
		kustomization += "resources: [" + base + "]\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}
