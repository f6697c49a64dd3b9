//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// debugTarget runs a pod of its own for kubectl debug to add containers to (other tests list demo's),
// named prefix and a marker, deleted when the test ends.
func debugTarget(t *testing.T, prefix string) string {
	t.Helper()
	pod := prefix + marker(t)[1:9]
	admin(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: demo}
spec:
  nodeName: 127.0.0.1
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: registry.local/busybox:local, imagePullPolicy: Never, command: [sleep, "2147483647"]}
`, pod), "apply", "-f", "-")
	t.Cleanup(func() { admin(t, "", "-n", "demo", "delete", "pod", pod, "--wait=false") })
	admin(t, "", "-n", "demo", "wait", "--for=condition=Ready", "pod/"+pod, "--timeout=60s")
	return pod
}

// TestDebugThroughRoute: kubectl debug with the route's context adds an ephemeral container as the
// user asked (exec-proxy creates it after the user's own authorization, and records it as theirs)
// and attaches to it through exec-proxy, recorded like any attach; with deny-direct-exec on too,
// where kube-apiserver refuses the same ephemeral container to the user directly.
func TestDebugThroughRoute(t *testing.T) {
	pod := debugTarget(t, "debug-")

	debug := func(t *testing.T, c client) {
		name := "dbg-" + marker(t)[1:9]
		s := c.start(t, viaExecProxy, "admin", "-n", "demo", "debug", pod, "-i", "--image=registry.local/busybox:local",
			"--image-pull-policy=Never", "--target=main", "-c", name, "--", "sh")
		s.waitFor(t, "If you don't see a command prompt")
		_, _ = io.WriteString(s.stdin, "echo debugged-$((6*7)) $(hostname)\n")
		s.waitFor(t, "debugged-42 "+pod)
		_, _ = io.WriteString(s.stdin, "exit 0\n")
		if code := s.wait(t); code != 0 {
			t.Errorf("kubectl debug exited %d:\n%s", code, s.output())
		}
		got := recordsWhere(t, "the debug container's records", func(ev auditv1.Event) bool {
			return ev.Annotations[annotation+"container"] == name
		}, map[string]int{"ephemeral-container": 1, "start": 1, "end": 1})
		add := got["ephemeral-container"][0]
		if add.User.Username != "admin" || add.Annotations[annotation+"image"] != "registry.local/busybox:local" || add.ObjectRef.Name != pod {
			t.Errorf("the ephemeral container's record: user %s, image %q, pod %s", add.User.Username, add.Annotations[annotation+"image"], add.ObjectRef.Name)
		}
		if start := got["start"][0]; start.ObjectRef.Subresource != "attach" {
			t.Errorf("the debug session's record is a %s", start.ObjectRef.Subresource)
		}
	}
	for _, c := range clients[:2] {
		t.Run(c.name, func(t *testing.T) { debug(t, c) })
	}
	t.Run("without the right", func(t *testing.T) {
		want := `Error from server (Forbidden): pods "` + pod + `" is forbidden: User "viewer" cannot patch resource "pods/ephemeralcontainers" in API group "" in the namespace "demo"`
		for _, rt := range []route{viaAPIServer, viaExecProxy} {
			res := clients[1].kubectl(t, rt, "viewer", "", "-n", "demo", "debug", pod, "--image=registry.local/busybox:local", "-c", "nope", "--", "true")
			if res.code == 0 || !strings.Contains(res.stderr, want) {
				t.Errorf("viewer via %s: exit %d %q, want %q", rt.name, res.code, res.stderr, want)
			}
		}
	})
	t.Run("with deny-direct-exec", func(t *testing.T) {
		dir := withComponent(t, "deny-direct-exec", false)
		admin(t, "", "apply", "-k", dir)
		t.Cleanup(func() { admin(t, "", "delete", "-k", dir, "--wait") })
		eventually(t, 30*time.Second, "kube-apiserver to refuse ephemeral containers to admin", func() bool {
			res := clients[1].kubectl(t, viaAPIServer, "admin", "", "-n", "demo", "debug", pod, "--image=registry.local/busybox:local",
				"--image-pull-policy=Never", "-c", "refused-"+marker(t)[1:9], "--", "true")
			return strings.Contains(res.stderr, "ephemeral containers are added through exec-proxy")
		})
		for _, c := range clients[:2] {
			t.Run(c.name, func(t *testing.T) { debug(t, c) })
		}
	})
}
