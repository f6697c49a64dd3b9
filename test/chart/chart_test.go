//go:build chart

// Package chart tests charts/exec-proxy with the real helm (hack/build-helm.sh): lint, rendering
// with several value sets, the values schema, and that the chart renders what deploy/ does.
// make test-chart runs it; HELM and KUBECTL name the binaries.
package chart

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/exec-proxy/exec-proxy/pkg/policy"
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func chartDir() string { return filepath.Join(repoRoot(), "charts", "exec-proxy") }

func testdata(name string) string {
	return filepath.Join(repoRoot(), "test", "chart", "testdata", name)
}

// tool is the binary named by the environment variable env (make test-chart sets it).
func tool(t *testing.T, env string) string {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		t.Fatalf("%s is not set: run make test-chart, which builds helm and names kubectl", env)
	}
	return path
}

// run runs bin with args and returns its stdout, or its stderr in the error.
func run(bin string, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

// object is one decoded manifest.
type object = map[string]any

// decode splits a multi-document YAML stream into its objects, skipping empty documents.
func decode(t *testing.T, manifests string) []object {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifests)))
	var objs []object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("splitting the manifests: %v", err)
		}
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("decoding %s: %v", doc, err)
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
}

// field is the value at path in o, nil where a step is missing; a number steps into a list.
func field(o any, path ...any) any {
	for _, step := range path {
		switch s := step.(type) {
		case string:
			m, _ := o.(map[string]any)
			o = m[s]
		case int:
			l, _ := o.([]any)
			if s >= len(l) {
				return nil
			}
			o = l[s]
		}
	}
	return o
}

func str(o any, path ...any) string { s, _ := field(o, path...).(string); return s }

// key names an object as kubectl does: kind, namespace and name.
func key(o object) string {
	return fmt.Sprintf("%s %s/%s", str(o, "kind"), str(o, "metadata", "namespace"), str(o, "metadata", "name"))
}

func byKey(t *testing.T, objs []object) map[string]object {
	t.Helper()
	m := map[string]object{}
	for _, o := range objs {
		if _, dup := m[key(o)]; dup {
			t.Errorf("%s rendered twice", key(o))
		}
		m[key(o)] = o
	}
	return m
}

func ofKind(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if str(o, "kind") == kind {
			out = append(out, o)
		}
	}
	return out
}

// template renders the chart as the release exec-proxy with the values files and --set args.
func template(t *testing.T, args ...string) []object {
	t.Helper()
	out, err := run(tool(t, "HELM"), append([]string{"template", "exec-proxy", chartDir()}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, out)
}

// The value sets that lint and template run with: the defaults, each of deploy/'s components, and
// every option away from its default.
var valueSets = []struct {
	name  string
	args  []string
	check func(t *testing.T, objs []object)
}{
	{name: "defaults", check: checkDefaults},
	{name: "deploy", args: []string{"-f", testdata("deploy.yaml")}},
	{name: "cert-manager", args: []string{"-f", testdata("cert-manager.yaml")}, check: checkCertManager},
	{name: "servicemonitor", args: []string{"-f", testdata("servicemonitor.yaml")}, check: func(t *testing.T, objs []object) {
		sm := ofKind(objs, "ServiceMonitor")
		if len(sm) != 1 || str(sm[0], "spec", "endpoints", 0, "tlsConfig", "serverName") != "exec-proxy.execproxy-system.svc" ||
			str(sm[0], "spec", "endpoints", 0, "tlsConfig", "ca", "secret", "name") != "exec-proxy-serving" ||
			str(sm[0], "spec", "endpoints", 0, "authorization", "credentials", "name") != "exec-proxy-metrics-token" {
			t.Errorf("ServiceMonitors: %v", sm)
		}
	}},
	{name: "monitoring", args: []string{"-f", testdata("monitoring.yaml")}, check: func(t *testing.T, objs []object) {
		rules, dashboards := ofKind(objs, "PrometheusRule"), ofKind(objs, "ConfigMap")
		if len(rules) != 1 || str(rules[0], "spec", "groups", 0, "name") != "execproxy-audit" {
			t.Errorf("PrometheusRules: %v", rules)
		}
		if !slices.ContainsFunc(dashboards, func(o object) bool { return str(o, "metadata", "labels", "grafana_dashboard") == "1" }) {
			t.Errorf("no ConfigMap labelled grafana_dashboard: %v", dashboards)
		}
	}},
	{name: "deny-direct-exec", args: []string{"-f", testdata("deny-direct-exec.yaml")}, check: func(t *testing.T, objs []object) {
		if p, b := len(ofKind(objs, "ValidatingAdmissionPolicy")), len(ofKind(objs, "ValidatingAdmissionPolicyBinding")); p != 4 || b != 4 {
			t.Errorf("%d policies and %d bindings, want 4 and 4", p, b)
		}
	}},
	{name: "every option", args: []string{"-f", testdata("every-option.yaml")}, check: checkEveryOption},
}

func TestLint(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			if out, err := run(tool(t, "HELM"), append([]string{"lint", "--strict", chartDir()}, vs.args...)...); err != nil {
				t.Errorf("%v\n%s", err, out)
			}
		})
	}
}

func TestTemplate(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			objs := template(t, vs.args...)
			byKey(t, objs)
			if vs.check != nil {
				vs.check(t, objs)
			}
		})
	}
}

// checkDefaults: the chart makes a serving certificate for the Service's name, and the APIService
// trusts the CA that signed it.
func checkDefaults(t *testing.T, objs []object) {
	m := byKey(t, objs)
	secret, ok := m["Secret execproxy-system/exec-proxy-serving"]
	if !ok {
		t.Fatal("no generated Secret exec-proxy-serving")
	}
	pemOf := func(b64 string) *x509.Certificate {
		t.Helper()
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(raw)
		if block == nil {
			t.Fatalf("no PEM in %q", raw)
		}
		crt, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return crt
	}
	ca := pemOf(str(m["APIService /v1alpha1.execproxy.dev"], "spec", "caBundle"))
	if secretCA := pemOf(str(secret, "data", "ca.crt")); !secretCA.Equal(ca) {
		t.Error("the Secret's ca.crt is not the APIService's caBundle")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := pemOf(str(secret, "data", "tls.crt")).Verify(x509.VerifyOptions{DNSName: "exec-proxy.execproxy-system.svc", Roots: pool}); err != nil {
		t.Errorf("the serving certificate does not verify for the Service's name against the caBundle: %v", err)
	}
	if n := field(m["Deployment execproxy-system/exec-proxy"], "spec", "replicas"); n != 2.0 {
		t.Errorf("replicas %v, want 2", n)
	}
}

func checkCertManager(t *testing.T, objs []object) {
	m := byKey(t, objs)
	for _, k := range []string{"Issuer execproxy-system/exec-proxy-selfsigned", "Certificate execproxy-system/exec-proxy-serving",
		"Issuer execproxy-system/exec-proxy-kubelet-client-ca", "Certificate execproxy-system/exec-proxy-kubelet-client"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	api := m["APIService /v1alpha1.execproxy.dev"]
	if got := str(api, "metadata", "annotations", "cert-manager.io/inject-ca-from"); got != "execproxy-system/exec-proxy-serving" || field(api, "spec", "caBundle") != nil {
		t.Errorf("APIService: inject-ca-from %q, caBundle %v", got, field(api, "spec", "caBundle"))
	}
	if len(ofKind(objs, "Secret")) != 0 {
		t.Error("a Secret rendered beside cert-manager's")
	}
}

func checkEveryOption(t *testing.T, objs []object) {
	m := byKey(t, objs)
	for _, o := range objs {
		if ns := str(o, "metadata", "namespace"); ns != "" && ns != "audit-proxy" && key(o) != "RoleBinding kube-system/audit-proxy:auth-reader" {
			t.Errorf("%s is not in audit-proxy", key(o))
		}
		if n := str(o, "metadata", "name"); str(o, "metadata", "namespace") == "" && !strings.HasPrefix(n, "audit-proxy") && n != "v1alpha1.execproxy.dev" {
			t.Errorf("cluster-scoped %s lacks the prefix", key(o))
		}
	}
	if _, ok := m["Namespace /audit-proxy"]; ok {
		t.Error("namespace.create false, and the Namespace rendered")
	}
	dep := m["Deployment audit-proxy/exec-proxy"]
	pod := field(dep, "spec", "template", "spec")
	args := field(pod, "containers", 0, "args").([]any)
	for _, want := range []string{"--recording-dir=/var/lib/exec-proxy/recordings", "--record-non-tty", "--record-stdin",
		"--recording-failure-policy=fail-closed", "--recording-bucket=s3://audit-recordings?region=eu-west-1&prefix=prod/",
		"--recording-upload-interval=2s", "--recording-retention=720h", "--session-policy-file=/etc/exec-proxy/session-policy/policy.yaml",
		"--shutdown-grace-period=120s", "--max-sessions-per-user=5", "--admission=cluster"} {
		if !slices.Contains(args, any(want)) {
			t.Errorf("args lack %s: %v", want, args)
		}
	}
	for _, c := range []struct {
		path []any
		want any
	}{
		{[]any{"spec", "replicas"}, 3.0},
		{[]any{"spec", "template", "spec", "terminationGracePeriodSeconds"}, 150.0},
		{[]any{"spec", "template", "spec", "securityContext", "fsGroup"}, 65532.0},
		{[]any{"spec", "template", "spec", "priorityClassName"}, nil},
		{[]any{"spec", "template", "spec", "containers", 0, "image"}, "registry.example/exec-proxy@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{[]any{"spec", "template", "spec", "containers", 0, "imagePullPolicy"}, "Always"},
		{[]any{"spec", "template", "spec", "imagePullSecrets", 0, "name"}, "registry"},
		{[]any{"spec", "template", "spec", "nodeSelector", "kubernetes.io/os"}, "linux"},
		{[]any{"spec", "template", "spec", "tolerations", 0, "value"}, "audit"},
		{[]any{"spec", "template", "spec", "containers", 0, "resources", "limits", "memory"}, "512Mi"},
		{[]any{"spec", "template", "spec", "containers", 0, "envFrom", 0, "secretRef", "name"}, "bucket-credentials"},
	} {
		if got := field(dep, c.path...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Deployment %v: %v, want %v", c.path, got, c.want)
		}
	}
	volumes := map[string]any{}
	for _, v := range field(pod, "volumes").([]any) {
		volumes[str(v, "name")] = v
	}
	for name, want := range map[string][]any{
		"serving":        {"secret", "secretName", "audit-proxy-serving"},
		"kubelet-ca":     {"configMap", "name", "kubelet-serving-ca"},
		"kubelet-client": {"secret", "secretName", "audit-proxy-kubelet-client"},
		"recordings":     {"persistentVolumeClaim", "claimName", "exec-proxy-recordings"},
		"session-policy": {"configMap", "name", "exec-proxy-session-policy"},
	} {
		if got := str(volumes[name], want[0], want[1]); got != want[2] {
			t.Errorf("volume %s: %s.%s %q, want %q", name, want[0], want[1], got, want[2])
		}
	}
	if pvc := m["PersistentVolumeClaim audit-proxy/exec-proxy-recordings"]; str(pvc, "spec", "storageClassName") != "fast" || str(pvc, "spec", "resources", "requests", "storage") != "50Gi" {
		t.Errorf("PVC: %v", pvc)
	}
	if got := str(m["PodDisruptionBudget audit-proxy/exec-proxy"], "spec", "minAvailable"); got != "50%" {
		t.Errorf("PDB minAvailable %q", got)
	}
	if got := str(m["ConfigMap audit-proxy/kubelet-serving-ca"], "data", "ca.crt"); !strings.HasPrefix(got, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("kubelet CA ConfigMap: %q", got)
	}
	if got := str(m["Certificate audit-proxy/exec-proxy-kubelet-client"], "spec", "issuerRef", "name"); got != "exec-proxy-kubelet-client-ca" {
		t.Errorf("kubelet client Certificate's issuer %q", got)
	}
	if got := str(m["Issuer audit-proxy/exec-proxy-kubelet-client-ca"], "spec", "ca", "secretName"); got != "kubelet-client-ca-2" {
		t.Errorf("kubelet client CA Issuer's Secret %q", got)
	}
	vap := m["ValidatingAdmissionPolicy /audit-proxy-deny-direct-ephemeral-containers"]
	if got := str(vap, "spec", "validations", 0, "expression"); !strings.Contains(got, "'system:serviceaccount:audit-proxy:exec-proxy'") {
		t.Errorf("the ephemeral containers policy lets through %q, not the service account of audit-proxy", got)
	}
	// exec-proxy's own parser takes the session policy the chart wrote.
	p, err := policy.Parse([]byte(str(m["ConfigMap audit-proxy/exec-proxy-session-policy"], "data", "policy.yaml")))
	if err != nil {
		t.Fatalf("exec-proxy refuses the chart's session policy: %v", err)
	}
	if !p.SetsRecording() {
		t.Error("the parsed policy lost the rule that sets recording")
	}
}

// TestSchemaRefuses: values.schema.json, and the chart's own checks, refuse bad values with a
// message that names them.
func TestSchemaRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"negative replicas", []string{"--set", "replicas=-1"}, "/replicas"},
		{"replicas not a number", []string{"--set-string", "replicas=two"}, "/replicas"},
		{"unknown certificate source", []string{"--set", "servingCertificate.source=vault"}, "/servingCertificate/source"},
		{"unknown top-level value", []string{"--set", "replica=2"}, "additional properties 'replica' not allowed"},
		{"unknown nested value", []string{"--set", "recording.dir=/data"}, "at '/recording': additional properties 'dir' not allowed"},
		{"unknown recording storage", []string{"--set", "recording.storage=s3"}, "/recording/storage"},
		{"bad failure policy", []string{"--set", "recording.failurePolicy=fail-closd"}, "/recording/failurePolicy"},
		{"flag without dashes", []string{"--set", "extraArgs[0]=max-sessions=5"}, "/extraArgs/0"},
		{"caBundle not PEM", []string{"--set", "servingCertificate.source=secret,servingCertificate.caBundle=abc"}, "/servingCertificate/caBundle"},
		{"bad digest", []string{"--set", "image.digest=sha256:xyz"}, "/image/digest"},
		{"policy rule without a name", []string{"--set-json", `sessionPolicy.rules=[{"match":{}}]`}, "at '/sessionPolicy/rules/0': missing property 'name'"},
		{"recording rule without recording", []string{"--set-json", `sessionPolicy.rules=[{"name":"r","recording":{"record":"all"}}]`}, `rule "r" sets recording`},
		{"caBundle with a generated certificate", []string{"--set", "servingCertificate.caBundle=-----BEGIN CERTIFICATE-----"}, "caBundle is for source secret"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := run(tool(t, "HELM"), append([]string{"template", "exec-proxy", chartDir()}, c.args...)...)
			if err == nil {
				t.Fatalf("helm template %v succeeded", c.args)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("the refusal does not name %q: %v", c.want, err)
			}
		})
	}
}

// helmOnlyLabels are the labels the chart adds to deploy/'s: Helm's own bookkeeping.
var helmOnlyLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}

// TestDeployDrift: the chart, with values that match deploy/'s choices, renders the very objects that
// kubectl kustomize renders of deploy/ (and of it with each component): the same set of kinds,
// namespaces and names, and each object equal but for the chart's helmOnlyLabels.
func TestDeployDrift(t *testing.T) {
	for _, c := range []struct {
		component string // deploy/components/<component>; empty: deploy/ alone
		values    []string
	}{
		{"", []string{"deploy.yaml"}},
		{"cert-manager", []string{"deploy.yaml", "cert-manager.yaml"}},
		{"servicemonitor", []string{"deploy.yaml", "servicemonitor.yaml"}},
		{"monitoring", []string{"deploy.yaml", "monitoring.yaml"}},
		{"deny-direct-exec", []string{"deploy.yaml", "deny-direct-exec.yaml"}},
		{"recording-bucket", []string{"deploy.yaml", "recording-bucket.yaml"}},
	} {
		name := "deploy"
		if c.component != "" {
			name += "+" + c.component
		}
		t.Run(name, func(t *testing.T) {
			var args []string
			for _, v := range c.values {
				args = append(args, "-f", testdata(v))
			}
			chart := byKey(t, template(t, args...))
			kustomized := byKey(t, kustomize(t, c.component))
			for _, d := range drift(kustomized, chart) {
				t.Error(d)
			}
		})
	}
}

// kustomize renders deploy/, with the component if one is named, as kubectl apply -k would. The
// component goes into a copy of deploy/kustomization.yaml, as its comments say to use it, so that
// the kustomization's labels reach the component's objects too.
func kustomize(t *testing.T, component string) []object {
	t.Helper()
	dir := filepath.Join(repoRoot(), "deploy")
	if component != "" {
		dir = t.TempDir()
		if err := os.CopyFS(dir, os.DirFS(filepath.Join(repoRoot(), "deploy"))); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(filepath.Join(dir, "kustomization.yaml"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = fmt.Fprintf(f, "components: [components/%s]\n", component)
		if err = errors.Join(err, f.Close()); err != nil {
			t.Fatal(err)
		}
	}
	out, err := run(tool(t, "KUBECTL"), "kustomize", dir)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, out)
}

// drift lists how the chart's objects differ from deploy/'s: objects only one has, and each field
// that differs, by its path.
func drift(deploy, chart map[string]object) []string {
	var out []string
	for _, k := range unionKeys(deploy, chart) {
		d, inDeploy := deploy[k]
		c, inChart := chart[k]
		switch {
		case !inChart:
			out = append(out, fmt.Sprintf("%s: in deploy/, not rendered by the chart", k))
		case !inDeploy:
			out = append(out, fmt.Sprintf("%s: rendered by the chart, not in deploy/", k))
		default:
			for _, f := range diff("", d, withoutHelmLabels(c)) {
				out = append(out, k+": "+f)
			}
		}
	}
	return out
}

// unionKeys are the keys of a and b, sorted, each once.
func unionKeys[M ~map[string]V, V any](a, b M) []string {
	keys := slices.Sorted(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// withoutHelmLabels is o without helmOnlyLabels (and without labels at all when none are left).
func withoutHelmLabels(o object) object {
	meta, _ := o["metadata"].(map[string]any)
	labels, _ := meta["labels"].(map[string]any)
	if labels == nil {
		return o
	}
	kept := map[string]any{}
	for k, v := range labels {
		if !slices.Contains(helmOnlyLabels, k) {
			kept[k] = v
		}
	}
	newMeta := map[string]any{}
	for k, v := range meta {
		newMeta[k] = v
	}
	delete(newMeta, "labels")
	if len(kept) > 0 {
		newMeta["labels"] = kept
	}
	out := object{}
	for k, v := range o {
		out[k] = v
	}
	out["metadata"] = newMeta
	return out
}

// diff lists the paths at which a (deploy/'s) and b (the chart's) differ, with both values.
func diff(path string, a, b any) []string {
	am, aMap := a.(map[string]any)
	bm, bMap := b.(map[string]any)
	if aMap && bMap {
		var out []string
		for _, k := range unionKeys(am, bm) {
			out = append(out, diff(path+"."+k, am[k], bm[k])...)
		}
		return out
	}
	al, aList := a.([]any)
	bl, bList := b.([]any)
	if aList && bList && len(al) == len(bl) {
		var out []string
		for i := range al {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), al[i], bl[i])...)
		}
		return out
	}
	if reflect.DeepEqual(a, b) {
		return nil
	}
	return []string{fmt.Sprintf("%s: deploy/ has %s, the chart %s", path, show(a), show(b))}
}

func show(v any) string {
	if v == nil {
		return "nothing"
	}
	j, _ := yaml.Marshal(v)
	return strings.TrimSpace(string(j))
}
