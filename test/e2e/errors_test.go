//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

const errorsNamespace = "e2e-errors"

// setupBrokenPods creates pods and nodes in every state the error table needs. Nodes without a
// kubelet and pods patched to Running are plain API objects: nothing runs them, nothing changes them.
func setupBrokenPods(t *testing.T) {
	t.Helper()
	removeBrokenPods(t)
	ensureNamespace(t, errorsNamespace)
	var manifest strings.Builder
	for _, n := range []string{"ghost-less-address", "dead-kubelet"} {
		fmt.Fprintf(&manifest, "---\napiVersion: v1\nkind: Node\nmetadata: {name: %s}\n", n)
	}
	pods := map[string]string{"unscheduled": "", "pending": "nowhere", "on-missing-node": "nowhere",
		"on-addressless-node": "ghost-less-address", "on-dead-node": "dead-kubelet"}
	for name, node := range pods {
		fmt.Fprintf(&manifest, `---
apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s}
spec:
  nodeName: %q
  schedulerName: e2e-none # no such scheduler: "unscheduled" stays so
  automountServiceAccountToken: false
  containers: [{name: main, image: registry.local/busybox:local, imagePullPolicy: Never}]
`, name, errorsNamespace, node)
	}
	admin(t, manifest.String(), "apply", "-f", "-")
	// A node with no address, and one whose kubelet port has nothing listening.
	admin(t, "", "patch", "node", "dead-kubelet", "--subresource=status", "--type=merge", "-p",
		`{"status":{"addresses":[{"type":"InternalIP","address":"127.0.0.3"}],"daemonEndpoints":{"kubeletEndpoint":{"Port":1}}}}`)
	for _, p := range []string{"on-missing-node", "on-addressless-node", "on-dead-node"} {
		admin(t, "", "-n", errorsNamespace, "patch", "pod", p, "--subresource=status", "--type=merge", "-p", `{"status":{"phase":"Running"}}`)
	}
	t.Cleanup(func() { removeBrokenPods(t) })
	// exec-proxy reads pods from its informer: wait until it has seen the last patch.
	eventually(t, 30*time.Second, "exec-proxy to see the patched pods", func() bool {
		code, _ := rawRequest(t, "admin", spdyUpgrade, kubeRoute+"/api/v1/namespaces/"+errorsNamespace+"/pods/on-dead-node/exec?command=true&stdout=true")
		return code == http.StatusServiceUnavailable
	})
}

// removeBrokenPods deletes what setupBrokenPods made. No kubelet will confirm these pods'
// termination, so they are deleted at once. The namespace stays, for the next run; one an older
// cluster, without a namespace controller, left Terminating is finalized.
func removeBrokenPods(t *testing.T) {
	t.Helper()
	admin(t, "", "-n", errorsNamespace, "delete", "pods", "--all", "--force", "--grace-period=0", "--ignore-not-found")
	admin(t, "", "delete", "node", "ghost-less-address", "dead-kubelet", "--ignore-not-found")
	if admin(t, "", "get", "namespace", "--ignore-not-found", errorsNamespace, "-o", "jsonpath={.metadata.deletionTimestamp}") != "" {
		ns := fmt.Sprintf(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q},"spec":{"finalizers":[]}}`, errorsNamespace)
		admin(t, ns, "replace", "--raw", "/api/v1/namespaces/"+errorsNamespace+"/finalize", "-f", "-")
	}
}

// TestErrors: every refusal is a Status with the right code, and kubectl shows its message.
func TestErrors(t *testing.T) {
	setupBrokenPods(t)
	cases := []struct {
		name      string
		namespace string
		args      []string
		code      int
		message   string
		// kubectl's own message where a kubectl version checks the case before any request
		// (kubectl 1.36 checks the container against the pod it read); the raw request below
		// still checks exec-proxy's.
		byKubectl map[string]string
	}{
		{"pod not found", "demo", []string{"exec", "nope", "--", "true"}, 404, `pods "nope" not found`, nil},
		{"no host", errorsNamespace, []string{"exec", "unscheduled", "--", "true"}, 400, "pod unscheduled does not have a host assigned", nil},
		{"container not found", "demo", []string{"exec", "demo", "-c", "nope", "--", "true"}, 400, "container nope is not valid for pod demo, choose one of: [main sidecar]",
			map[string]string{"1.36": "container nope is not valid for pod demo out of: main, sidecar"}},
		{"not running", errorsNamespace, []string{"exec", "pending", "--", "true"}, 400, "pod pending is not running (phase Pending)", nil},
		{"node not found", errorsNamespace, []string{"exec", "on-missing-node", "--", "true"}, 503, `node "nowhere" not found`, nil},
		{"node without address", errorsNamespace, []string{"exec", "on-addressless-node", "--", "true"}, 503, `node "ghost-less-address" has no address of the preferred types`, nil},
		{"kubelet unreachable", errorsNamespace, []string{"exec", "on-dead-node", "--", "true"}, 503, `kubelet on node "dead-kubelet" (127.0.0.3:1) is unreachable`, nil},
		{"exec without command", "demo", []string{"exec", "demo", "-c", "main"}, 0, "you must specify at least one command for the container", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range clients {
				res := c.kubectl(t, viaExecProxy, "admin", "", append([]string{"-n", tc.namespace}, tc.args...)...)
				message := tc.message
				if m, ok := tc.byKubectl[c.version]; ok {
					message = m
				}
				if res.code == 0 || !strings.Contains(res.stderr, message) {
					t.Errorf("%s: want kubectl to fail with %q, got exit %d: %s", c.name, message, res.code, res.stderr)
				}
			}
			if tc.code == 0 || tc.args[1] == "nope" { // client-side checks, and the pod GET before any upgrade
				return
			}
			query := "?command=true&stdout=true"
			if tc.args[2] == "-c" {
				query += "&container=" + tc.args[3]
			}
			path := fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s/exec%s", kubeRoute, tc.namespace, tc.args[1], query)
			for _, up := range []upgrade{spdyUpgrade, wsUpgrade} {
				code, st := rawRequest(t, "admin", up, path)
				if code != tc.code || st.Code != tc.code || !strings.Contains(st.Message, tc.message) {
					t.Errorf("%s: got %d %+v, want %d with %q", up.name, code, st, tc.code, tc.message)
				}
			}
		})
	}
}

// TestRouteServesOnlySessions: with --route-pass-through=false, other calls through the route get a
// Status saying what it serves (TestOneContext: with it, they work).
func TestRouteServesOnlySessions(t *testing.T) {
	restartExecProxy(t, "--route-pass-through=false")
	cases := []struct {
		args    []string
		message string
	}{
		{[]string{"get", "pods"}, "is not served: exec-proxy's kube route serves only"},
		{[]string{"logs", "demo", "-c", "main"}, "is not served: exec-proxy's kube route serves only"},
		{[]string{"delete", "pod", "demo", "--dry-run=server"}, "DELETE is not allowed on pods: exec-proxy's kube route serves only"},
	}
	for _, tc := range cases {
		res := clients[1].kubectl(t, viaExecProxy, "admin", "", append([]string{"-n", "demo"}, tc.args...)...)
		if res.code == 0 || !strings.Contains(res.stderr, tc.message) {
			t.Errorf("kubectl %v: want %q, got exit %d: %s", tc.args, tc.message, res.code, res.stderr)
		}
	}
	if res := clients[1].kubectl(t, viaExecProxy, "admin", "", "-n", "demo", "get", "pod", "demo", "-o", "name"); res.stdout != "pod/demo\n" {
		t.Errorf("get pod through the route: %q %s", res.stdout, res.stderr)
	}
}
