//go:build e2e

package e2e

import (
	"encoding/json"
	"slices"
	"testing"
)

// coverageReport is what `kubectl execproxy coverage -o json` prints, in the part the test reads.
type coverageReport struct {
	DenyDirectExec string `json:"denyDirectExec"`
	Rights         []struct {
		Right   string `json:"right"`
		Closed  bool   `json:"closed"`
		Holders []struct{ Kind, Name, Scope string }
	} `json:"rights"`
}

func coverageOf(t *testing.T) coverageReport {
	t.Helper()
	out, err := plugin(t, kubeconfig("cluster-admin"), "coverage", "-o", "json")
	if err != nil {
		t.Fatalf("coverage: %v\n%s", err, out)
	}
	var r coverageReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("coverage -o json: %v\n%s", err, out)
	}
	return r
}

// holds says whether the report lists subject (kind/name) under right, and whether the right is closed.
func (r coverageReport) holds(right, kind, name string) (held, closed bool) {
	for _, rc := range r.Rights {
		if rc.Right == right {
			return slices.ContainsFunc(rc.Holders, func(h struct{ Kind, Name, Scope string }) bool { return h.Kind == kind && h.Name == name }), rc.Closed
		}
	}
	return false, false
}

// TestCoverage: kubectl execproxy coverage names the subjects the cluster's RBAC gives each
// bypassing right, and says which rights deny-direct-exec closes.
func TestCoverage(t *testing.T) {
	applyObjects(t, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: e2e-bypasser}
rules:
- {apiGroups: [""], resources: [nodes/proxy], verbs: [get]}
- {apiGroups: [""], resources: [pods/ephemeralcontainers], verbs: [patch]}
- {apiGroups: [""], resources: [services/proxy], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: e2e-bypasser}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: e2e-bypasser}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: e2e-bypasser}]
`)
	checks := []struct{ right, kind, name string }{
		{"get nodes/proxy", "User", "e2e-bypasser"},
		{"patch pods/ephemeralcontainers", "User", "e2e-bypasser"},
		{"create services/proxy", "User", "e2e-bypasser"},
		{"create pods/exec", "User", "ns-user"}, // hack/cluster/manifests/rbac-users.yaml
		{"create pods/exec", "User", "admin"},
	}
	r := coverageOf(t)
	for _, c := range checks {
		if held, closed := r.holds(c.right, c.kind, c.name); !held || closed {
			t.Errorf("%s: %s %s held %v, closed %v; want listed, open", c.right, c.kind, c.name, held, closed)
		}
	}
	if held, _ := r.holds("create pods/exec", "User", "viewer"); held {
		t.Error("viewer, who may not exec, is listed under create pods/exec")
	}

	dir := withComponent(t, "deny-direct-exec", false)
	admin(t, "", "apply", "-k", dir)
	t.Cleanup(func() { admin(t, "", "delete", "-k", dir, "--wait") })
	r = coverageOf(t)
	for _, c := range checks {
		held, closed := r.holds(c.right, c.kind, c.name)
		wantClosed := c.right != "get nodes/proxy" // the kubelet's own port stays open
		if closed != wantClosed || held == wantClosed {
			t.Errorf("with deny-direct-exec, %s: %s %s listed %v, closed %v; want closed %v (a closed right lists the break-glass group only)",
				c.right, c.kind, c.name, held, closed, wantClosed)
		}
	}
}
