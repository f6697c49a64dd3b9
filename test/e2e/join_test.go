//go:build e2e

package e2e

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// watcherRole lets ns-user watch the sessions in demo, not join them: get on execsessions/attach,
// without create.
const watcherRole = `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: e2e-join-watcher, namespace: demo}
rules:
- apiGroups: [execproxy.dev]
  resources: [execsessions, execsessions/attach]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: e2e-join-watcher, namespace: demo}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: e2e-join-watcher}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: ns-user}]
`

// TestJoinSession: kubectl execproxy join, through kube-apiserver (which reaches replica 1 only),
// types into a live TTY session of either replica, from kubectl 1.28 (SPDY) and 1.33 (WebSocket):
// a command the joiner types runs in the owner's shell, the owner's screen says who joined and
// left, and the replica that holds the session records join-start and join-end, with the bytes
// typed. A user who may watch (get on execsessions/attach) but not join (create) is refused by
// exec-proxy, over the WebSocket GET the handler chain authorized as get.
func TestJoinSession(t *testing.T) {
	startReplica2(t)
	admin(t, watcherRole, "apply", "-f", "-")
	t.Cleanup(func() { admin(t, watcherRole, "delete", "--ignore-not-found", "-f", "-") })
	cases := []struct {
		name string
		c    client
		rt   route
		log  string
	}{
		{"session on replica 2, kubectl 1.33 WebSocket", clients[1], viaReplica2, "exec-proxy-2-audit.log"},
		{"session on replica 1, kubectl 1.28 SPDY", clients[0], viaExecProxy, "exec-proxy-audit.log"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := marker(t)
			owner := newTerminal(t, 100, 30, tc.c.env, tc.c.path(), "--kubeconfig", kubeconfig("admin"+tc.rt.suffix),
				"exec", "-it", "demo", "-c", "main", "--", "env", "M="+m, "sh")
			owner.typeLine("echo before-$((6*7))-" + m)
			owner.waitFor("before-42-" + m)
			var id string
			eventually(t, 20*time.Second, "the session to be listed", func() bool {
				sessions, _ := listed(t, clients[1], m)
				for s := range sessions {
					id = s
				}
				return id != ""
			})

			// RBAC reaches kube-apiserver's authorizer, and exec-proxy's cached answers, in seconds.
			var refused string
			eventually(t, 30*time.Second, "ns-user's join refused for want of create", func() bool {
				refused, _ = plugin(t, kubeconfig("ns-user"), "join", "-n", "demo", id)
				return strings.Contains(refused, `cannot create resource "execsessions/attach"`)
			})
			if strings.Contains(owner.screen(), "ns-user") {
				t.Errorf("the owner was told of a join that was refused:\n%s", owner.screen())
			}

			joiner := newTerminal(t, 100, 30, nil, filepath.Join(repoRoot(), "bin", "kubectl-execproxy"),
				"--kubeconfig", kubeconfig("admin"), "join", "-n", "demo", id)
			// (The plugin's line that this is someone else's session is drawn over by the session's screen.)
			joiner.waitFor("before-42-" + m) // what was on the screen before the join
			owner.waitFor("[exec-proxy: admin joined this session and can type]")
			joiner.typeLine("echo joined-$((6*7))-" + m)
			owner.waitFor("joined-42-" + m) // ran in the owner's shell
			joiner.waitFor("joined-42-" + m)
			owner.typeLine("echo owner-$((6*7))-" + m)
			joiner.waitFor("owner-42-" + m)

			joiner.tmux("send-keys", "-t", "e2e", "C-]")
			if status := joiner.exitStatus(); status != "0" {
				t.Errorf("join exit status %s, want 0; screen:\n%s", status, joiner.screen())
			}
			owner.waitFor("[exec-proxy: admin left]")

			records := watchRecords(t, tc.log, id, map[string]int{"join-start": 1, "join-end": 1})
			end := records["join-end"][0]
			typed, _ := strconv.Atoi(end.Annotations[annotation+"bytes-stdin"])
			if end.User.Username != "admin" || end.Verb != "create" || end.Annotations[annotation+"reason"] != "the joiner left" ||
				typed < len("echo joined-$((6*7))-"+m) || end.ObjectRef == nil || end.ObjectRef.Subresource != "attach" || end.ObjectRef.Name != id {
				t.Errorf("join-end record: user %q, verb %q, reason %q, bytes-stdin %d, object %+v; want admin, create, the joiner left, the line typed, execsessions/attach %s",
					end.User.Username, end.Verb, end.Annotations[annotation+"reason"], typed, end.ObjectRef, id)
			}
			owner.typeLine("exit")
			if status := owner.exitStatus(); status != "0" {
				t.Errorf("owner's exit status %s, want 0; screen:\n%s", status, owner.screen())
			}
		})
	}
}
