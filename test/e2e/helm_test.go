//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// TestHelmChart: the real helm (hack/build-helm.sh) installs charts/exec-proxy on the local cluster,
// upgrades it with changed values that the objects then show, keeping the generated serving
// certificate, and uninstalls it leaving none of its objects behind.
//
// Objects only, not a running exec-proxy: replicas=0 and apiService.create=false, because the local
// cluster's own exec-proxy holds the one v1alpha1.execproxy.dev (TestInCluster runs exec-proxy from
// deploy/ in its place). A namespace and a name prefix of its own keep the release clear of the
// local cluster's execproxy-system and execproxy:* objects, which Helm would refuse to adopt; the
// chart makes the namespace, and the uninstall waits for it to go.
func TestHelmChart(t *testing.T) {
	const release, ns, prefix = "exec-proxy-e2e", "execproxy-helm-e2e", "execproxy-helm-e2e"
	h := helmRunner(t)
	chart := filepath.Join(repoRoot(), "charts", "exec-proxy")
	base := []string{"--namespace", "default", // the release's record, apart from exec-proxy's namespace
		"--set", "replicas=0,apiService.create=false,namespace.name=" + ns + ",clusterNamePrefix=" + prefix,
		"--set-file", "kubeletCA.certificate=" + filepath.Join(clusterDir(), "pki", "ca.crt")}
	t.Cleanup(func() { h.run(t, "uninstall", release, "--namespace", "default", "--ignore-not-found", "--wait") })

	h.run(t, append([]string{"install", release, chart}, base...)...)
	installed := h.manifest(t, release)
	for _, o := range installed {
		got := getObject(t, o)
		if got.Metadata.Labels["app.kubernetes.io/managed-by"] != "Helm" || got.Metadata.Annotations["meta.helm.sh/release-name"] != release {
			t.Errorf("%s %s: labels %v, annotations %v: not the release's", o.Metadata.Namespace, o.ref(), got.Metadata.Labels, got.Metadata.Annotations)
		}
	}
	servingCert := admin(t, "", "-n", ns, "get", "secret", "exec-proxy-serving", "-o", "jsonpath={.data.tls\\.crt}")
	if servingCert == "" {
		t.Fatal("the chart made no serving certificate")
	}

	h.run(t, append([]string{"upgrade", release, chart}, append(base,
		"--set", "shutdownGracePeriodSeconds=45,recording.enabled=true,denyDirectExec.enabled=true",
		"--set-json", `sessionPolicy.rules=[{"name":"e2e-read-only","match":{"namespaces":["demo"]},"stdin":"deny"}]`)...)...)
	var status struct {
		Version int
		Info    struct{ Status string }
	}
	if err := json.Unmarshal([]byte(h.run(t, "status", release, "--namespace", "default", "-o", "json")), &status); err != nil {
		t.Fatal(err)
	}
	if status.Version != 2 || status.Info.Status != "deployed" {
		t.Errorf("after the upgrade: revision %d, %s", status.Version, status.Info.Status)
	}
	var dep struct {
		Spec struct {
			Replicas *int
			Template struct {
				Spec struct {
					TerminationGracePeriodSeconds int
					Containers                    []struct{ Args []string }
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(admin(t, "", "-n", ns, "get", "deployment", "exec-proxy", "-o", "json")), &dep); err != nil {
		t.Fatal(err)
	}
	pod := dep.Spec.Template.Spec
	if pod.TerminationGracePeriodSeconds != 75 || dep.Spec.Replicas == nil || *dep.Spec.Replicas != 0 {
		t.Errorf("the upgraded Deployment: terminationGracePeriodSeconds %d (want 45+30), replicas %v (want 0)", pod.TerminationGracePeriodSeconds, dep.Spec.Replicas)
	}
	for _, want := range []string{"--shutdown-grace-period=45s", "--recording-dir=/var/lib/exec-proxy/recordings", "--session-policy-file=/etc/exec-proxy/session-policy/policy.yaml"} {
		if !slices.Contains(pod.Containers[0].Args, want) {
			t.Errorf("the upgraded Deployment's args lack %s: %v", want, pod.Containers[0].Args)
		}
	}
	if got := admin(t, "", "-n", ns, "get", "configmap", "exec-proxy-session-policy", "-o", "jsonpath={.data.policy\\.yaml}"); !strings.Contains(got, "e2e-read-only") {
		t.Errorf("the session policy ConfigMap: %q", got)
	}
	if got := admin(t, "", "get", "validatingadmissionpolicy", prefix+"-deny-direct-exec", "-o", "name"); got == "" {
		t.Error("the upgrade made no deny-direct-exec policy")
	}
	if got := admin(t, "", "-n", ns, "get", "secret", "exec-proxy-serving", "-o", "jsonpath={.data.tls\\.crt}"); got != servingCert {
		t.Error("the upgrade made a new serving certificate: it must keep the installed one")
	}
	upgraded := h.manifest(t, release)

	h.run(t, "uninstall", release, "--namespace", "default", "--wait")
	// Every object of either revision is gone.
	for _, o := range append(installed, upgraded...) {
		eventually(t, 2*time.Minute, o.Metadata.Namespace+" "+o.ref()+" to be deleted", func() bool {
			out := admin(t, "", o.get("--ignore-not-found", "-o", "name")...)
			return strings.TrimSpace(out) == ""
		})
	}
	// kube-apiserver's admission drops the deny-direct-exec policies a moment after they are deleted:
	// the tests after this one use its own exec.
	m := marker(t)
	eventually(t, 30*time.Second, "kube-apiserver's own exec to work again", func() bool {
		res := clients[1].kubectl(t, viaAPIServer, "admin", "", "exec", "demo", "-c", "main", "--", "echo", m)
		return res.code == 0 && res.stdout == m+"\n"
	})
	// And nothing else of the release: each kind it made, listed by the release's label; and the
	// release's record.
	kinds := map[string]bool{}
	for _, o := range append(installed, upgraded...) {
		kinds[o.kindGroup()] = true
	}
	for kind := range kinds {
		if out := admin(t, "", "get", kind, "--all-namespaces", "-l", "app.kubernetes.io/instance="+release, "-o", "name"); strings.TrimSpace(out) != "" {
			t.Errorf("left behind after helm uninstall: %s", out)
		}
	}
	if out := admin(t, "", "-n", "default", "get", "secrets", "-l", "owner=helm,name="+release, "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("the release's record is left behind: %s", out)
	}
}

// helm runs the real helm against the local cluster as its admin.
type helm struct{ bin string }

// helmRunner builds helm (or takes it from the cache) with hack/build-helm.sh.
func helmRunner(t *testing.T) helm {
	t.Helper()
	out, err := exec.Command(filepath.Join(repoRoot(), "hack", "build-helm.sh")).Output()
	if err != nil {
		t.Fatalf("hack/build-helm.sh: %v", err)
	}
	return helm{bin: strings.TrimSpace(string(out))}
}

func (h helm) run(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, h.bin, append([]string{"--kubeconfig", kubeconfig("cluster-admin")}, args...)...).Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			t.Fatalf("helm %v: %v\n%s", args, err, exitErr.Stderr)
		}
		t.Fatalf("helm %v: %v", args, err)
	}
	return string(out)
}

// chartObject is one object of a release's manifest.
type chartObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
}

// kindGroup is the object's kind as kubectl takes it: Kind.group, or Kind for the core group.
func (o chartObject) kindGroup() string {
	group, _, found := strings.Cut(o.APIVersion, "/")
	if !found {
		return o.Kind
	}
	return o.Kind + "." + group
}

// ref names the object, as kubectl get takes it.
func (o chartObject) ref() string { return o.kindGroup() + "/" + o.Metadata.Name }

// get are kubectl's arguments to get the object, then args.
func (o chartObject) get(args ...string) []string {
	get := []string{"get", o.ref()}
	if o.Metadata.Namespace != "" {
		get = append(get, "--namespace", o.Metadata.Namespace)
	}
	return append(get, args...)
}

// manifest is the objects of the release's current revision.
func (h helm) manifest(t *testing.T, release string) []chartObject {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(h.run(t, "get", "manifest", release, "--namespace", "default"))))
	var objs []chartObject
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatal(err)
		}
		var o chartObject
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("decoding %s: %v", doc, err)
		}
		if o.Kind != "" {
			objs = append(objs, o)
		}
	}
}

// getObject reads the object back from the cluster.
func getObject(t *testing.T, o chartObject) chartObject {
	t.Helper()
	var got chartObject
	if err := json.Unmarshal([]byte(admin(t, "", o.get("-o", "json")...)), &got); err != nil {
		t.Fatal(err)
	}
	return got
}
