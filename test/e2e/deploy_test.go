//go:build e2e

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
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
			"clusterrole.rbac.authorization.k8s.io/execproxy:user", "clusterrole.rbac.authorization.k8s.io/execproxy:kubelet-client",
			"clusterrolebinding.rbac.authorization.k8s.io/execproxy:kubelet-client"} {
			if !strings.Contains(out, want) {
				t.Errorf("dry run did not name %s:\n%s", want, out)
			}
		}
		rb := admin(t, "", "kustomize", filepath.Join(repoRoot(), "deploy"))
		if !strings.Contains(rb, "namespace: kube-system") {
			t.Error("the extension-apiserver-authentication-reader RoleBinding is not in kube-system")
		}
	})
	t.Run("kubelet credential", func(t *testing.T) { checkKubeletCredential(t, dryRun(t, filepath.Join(repoRoot(), "deploy"))) })
	t.Run("cert-manager component", func(t *testing.T) {
		// Built only: the local cluster has no cert-manager to take its kinds.
		dir := withComponent(t, "cert-manager", true)
		out := admin(t, "", "kustomize", dir)
		for _, want := range []string{"cert-manager.io/inject-ca-from: execproxy-system/exec-proxy-serving", "kind: Certificate", "secretName: exec-proxy-serving",
			"commonName: execproxy:kubelet-client", "secretName: exec-proxy-kubelet-client", "secretName: kubelet-client-ca", "- client auth"} {
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
// the kubelet CA and the kubelet client certificate, and fills the APIService's caBundle with the
// CA that signed the serving certificate.
func TestDeployCerts(t *testing.T) {
	certs := t.TempDir()
	cmd := exec.Command(filepath.Join(repoRoot(), "hack", "deploy-certs.sh"), filepath.Join(clusterDir(), "pki", "ca.crt"))
	cmd.Env = append(os.Environ(), "CERT_DIR="+certs, "KUBECONFIG="+kubeconfig("cluster-admin"), "KUBECTL="+clients[1].path())
	out, err := cmd.CombinedOutput()
	// The script pointed the local cluster's APIService at its own CA: put the cluster's back.
	t.Cleanup(func() { restartExecProxy(t) })
	t.Cleanup(func() {
		admin(t, "", "-n", "execproxy-system", "delete", "secret/exec-proxy-serving", "secret/exec-proxy-kubelet-client", "configmap/kubelet-ca", "--ignore-not-found")
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
	checkKubeletClientSecret(t, filepath.Join(certs, "kubelet-client-ca.crt"))
}

// checkKubeletClientSecret: the Secret exec-proxy-kubelet-client holds a client certificate for the
// user execproxy:kubelet-client, signed by the CA in caFile, and its key.
func checkKubeletClientSecret(t *testing.T, caFile string) {
	t.Helper()
	field := func(name string) []byte {
		b64 := admin(t, "", "-n", "execproxy-system", "get", "secret", "exec-proxy-kubelet-client", "-o", "jsonpath={.data.tls\\."+name+"}")
		data, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatalf("the Secret's tls.%s: %v", name, err)
		}
		return data
	}
	pair, err := tls.X509KeyPair(field("crt"), field("key"))
	if err != nil {
		t.Fatalf("the Secret exec-proxy-kubelet-client: %v", err)
	}
	crt, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	if _, err := crt.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the kubelet client certificate does not verify for client auth against %s: %v", caFile, err)
	}
	if crt.Subject.CommonName != "execproxy:kubelet-client" || len(crt.Subject.Organization) != 0 {
		t.Errorf("the kubelet client certificate is for %v, want CN=execproxy:kubelet-client and no group", crt.Subject)
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
	if name == "deny-direct-exec" {
		// The local cluster's exec-proxy runs as the user system:exec-proxy, not as the
		// Deployment's service account, which the component lets add ephemeral containers.
		kustomization += `patches:
- target: {kind: ValidatingAdmissionPolicy, name: execproxy-deny-direct-ephemeral-containers}
  patch: |-
    - op: replace
      path: /spec/validations/0/expression
      value: "request.userInfo.groups.exists(g, g == 'execproxy:break-glass') || request.userInfo.username == 'system:exec-proxy'"
`
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// deployed is what kube-apiserver made of deploy/ in a server-side dry run.
type deployed struct {
	deployments  []appsv1.Deployment
	clusterRoles map[string]rbacv1.ClusterRole
	roles        map[string]rbacv1.Role // by namespace/name
	bindings     []rbacv1.RoleBinding   // ClusterRoleBindings too, with no namespace
}

// dryRun applies the kustomization dir with --dry-run=server and decodes the objects kube-apiserver returns.
func dryRun(t *testing.T, dir string) deployed {
	t.Helper()
	out := admin(t, "", "apply", "-k", dir, "--dry-run=server", "-o", "json")
	var list struct{ Items []json.RawMessage }
	if err := json.NewDecoder(strings.NewReader(out[strings.Index(out, "{"):])).Decode(&list); err != nil {
		t.Fatalf("decoding the dry run: %v\n%s", err, out)
	}
	d := deployed{clusterRoles: map[string]rbacv1.ClusterRole{}, roles: map[string]rbacv1.Role{}}
	for _, item := range list.Items {
		var meta struct{ Kind string }
		_ = json.Unmarshal(item, &meta)
		var err error
		switch meta.Kind {
		case "Deployment":
			var o appsv1.Deployment
			err = json.Unmarshal(item, &o)
			d.deployments = append(d.deployments, o)
		case "ClusterRole":
			var o rbacv1.ClusterRole
			err = json.Unmarshal(item, &o)
			d.clusterRoles[o.Name] = o
		case "Role":
			var o rbacv1.Role
			err = json.Unmarshal(item, &o)
			d.roles[o.Namespace+"/"+o.Name] = o
		case "RoleBinding", "ClusterRoleBinding":
			var o rbacv1.RoleBinding
			err = json.Unmarshal(item, &o)
			d.bindings = append(d.bindings, o)
		}
		if err != nil {
			t.Fatalf("decoding a %s: %v", meta.Kind, err)
		}
	}
	return d
}

// rules are the rules of the role a binding refers to: from the dry run, else from the cluster
// (system:auth-delegator and the like).
func (d deployed) rules(t *testing.T, b rbacv1.RoleBinding) []rbacv1.PolicyRule {
	t.Helper()
	if b.RoleRef.Kind == "ClusterRole" {
		if r, ok := d.clusterRoles[b.RoleRef.Name]; ok {
			return r.Rules
		}
		var r rbacv1.ClusterRole
		if err := json.Unmarshal([]byte(admin(t, "", "get", "clusterrole", b.RoleRef.Name, "-o", "json")), &r); err != nil {
			t.Fatal(err)
		}
		return r.Rules
	}
	if r, ok := d.roles[b.Namespace+"/"+b.RoleRef.Name]; ok {
		return r.Rules
	}
	var r rbacv1.Role
	if err := json.Unmarshal([]byte(admin(t, "", "-n", b.Namespace, "get", "role", b.RoleRef.Name, "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	return r.Rules
}

// grantsNodesProxy tells whether a rule covers nodes/proxy in the core group.
func grantsNodesProxy(r rbacv1.PolicyRule) bool {
	has := func(list []string, want ...string) bool {
		for _, v := range list {
			for _, w := range want {
				if v == w {
					return true
				}
			}
		}
		return false
	}
	return has(r.APIGroups, "", "*") && has(r.Resources, "nodes/proxy", "nodes/*", "*") && has(r.Verbs, "create", "get", "*")
}

// checkKubeletCredential: deploy/ gives kubelets the client certificate from the Secret
// exec-proxy-kubelet-client, binds nodes/proxy to the certificate's user, and the service account
// (whose token a node could replay) has no nodes/proxy at all.
func checkKubeletCredential(t *testing.T, d deployed) {
	if len(d.deployments) != 1 {
		t.Fatalf("%d Deployments in deploy/", len(d.deployments))
	}
	pod := d.deployments[0].Spec.Template.Spec
	args := strings.Join(pod.Containers[0].Args, " ")
	for _, want := range []string{"--kubelet-client-certificate=/etc/exec-proxy/kubelet-client/tls.crt", "--kubelet-client-key=/etc/exec-proxy/kubelet-client/tls.key"} {
		if !strings.Contains(args, want) {
			t.Errorf("exec-proxy's args lack %s: %s", want, args)
		}
	}
	if strings.Contains(args, "--kubelet-token-file") {
		t.Errorf("exec-proxy is given a kubelet token: %s", args)
	}
	mounted := false
	for _, m := range pod.Containers[0].VolumeMounts {
		if m.MountPath != "/etc/exec-proxy/kubelet-client" {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == "exec-proxy-kubelet-client" && m.SubPath == "" {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Error("the Secret exec-proxy-kubelet-client is not mounted (whole, so that rotations reach it) at /etc/exec-proxy/kubelet-client")
	}
	certUser, sa := false, false
	for _, b := range d.bindings {
		for _, s := range b.Subjects {
			rules := d.rules(t, b)
			granted := false
			for _, r := range rules {
				granted = granted || grantsNodesProxy(r)
			}
			switch {
			case s.Kind == "User" && s.Name == "execproxy:kubelet-client" && granted:
				certUser = true
			case s.Kind == "ServiceAccount" && s.Namespace == "execproxy-system" && s.Name == "exec-proxy":
				sa = true
				if granted {
					t.Errorf("the service account has nodes/proxy through %s %s/%s", b.RoleRef.Kind, b.Namespace, b.RoleRef.Name)
				}
			}
		}
	}
	if !certUser || !sa {
		t.Errorf("nodes/proxy bound to the user execproxy:kubelet-client: %v; bindings of the service account found: %v", certUser, sa)
	}
}
