//go:build e2e

package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestRBAC: each user may exec through exec-proxy exactly where kube-apiserver lets them exec
// natively, with every kubectl.
func TestRBAC(t *testing.T) {
	cases := []struct {
		user, namespace, pod string
		allowed              bool
		refusal              string // what kubectl prints when refused
	}{
		{"admin", "demo", "demo", true, ""},
		{"admin", "team-b", "other", true, ""},
		{"ns-user", "demo", "demo", true, ""},
		{"ns-user", "team-b", "other", false, `User "ns-user" cannot get resource "pods" in API group "" in the namespace "team-b"`},
		{"viewer", "demo", "demo", false, `User "viewer" cannot create resource "pods/exec" in API group "" in the namespace "demo"`},
		{"viewer", "team-b", "other", false, `User "viewer" cannot create resource "pods/exec" in API group "" in the namespace "team-b"`},
		{"nobody", "demo", "demo", false, `User "nobody" cannot get resource "pods" in API group "" in the namespace "demo"`},
	}
	for _, tc := range cases {
		forEach(t, func(t *testing.T, c client, rt route) {
			res := c.kubectl(t, rt, tc.user, "", "-n", tc.namespace, "exec", tc.pod, "--", "echo", "in")
			if tc.user == "viewer" && rt == viaAPIServer && c.protocol == "v5.channel.k8s.io" && apiServerMinor(t) < 35 {
				// kube-apiserver before 1.35 authorizes a WebSocket exec as get pods/exec (create is
				// required from 1.35): natively the viewer can exec. exec-proxy must not, checked above.
				if res.code != 0 {
					t.Errorf("expected kube-apiserver 1.%d to let get-only %s exec over WebSocket; did the baseline change? %s", apiServerMinor(t), tc.user, res.stderr)
				}
				return
			}
			switch {
			case tc.allowed && (res.code != 0 || res.stdout != "in\n"):
				t.Errorf("%s in %s: want exec to work, got exit %d: %s", tc.user, tc.namespace, res.code, res.stderr)
			case !tc.allowed && (res.code == 0 || !strings.Contains(res.stderr, tc.refusal)):
				t.Errorf("%s in %s: want refusal %q, got exit %d: %s", tc.user, tc.namespace, tc.refusal, res.code, res.stderr)
			}
		})
	}
}

// TestExecNeedsCreateOnBothProtocols: a user with get (not create) on pods/exec is refused on the
// WebSocket GET as on the SPDY POST, before any session starts; a user who may create gets 101.
func TestExecNeedsCreateOnBothProtocols(t *testing.T) {
	path := kubeRoute + "/api/v1/namespaces/demo/pods/demo/exec?container=main&command=true&stdout=true"
	for _, up := range []upgrade{spdyUpgrade, wsUpgrade} {
		t.Run(up.name, func(t *testing.T) {
			code, st := rawRequest(t, "viewer", up, path)
			if code != http.StatusForbidden || !strings.Contains(st.Message, `cannot create resource "pods/exec"`) {
				t.Errorf("viewer: got %d %q, want 403 naming create pods/exec", code, st.Message)
			}
			if code, st := rawRequest(t, "ns-user", up, path); code != http.StatusSwitchingProtocols {
				t.Errorf("ns-user: got %d %q, want 101", code, st.Message)
			}
		})
	}
}
