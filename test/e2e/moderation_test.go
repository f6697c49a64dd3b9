//go:build e2e

package e2e

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// moderationPolicy: ns-user's sessions in demo wait for a moderator; on pod echo, for 3 s only.
const moderationPolicy = `apiVersion: execproxy.dev/v1alpha1
kind: SessionPolicy
rules:
- name: moderated-quick
  match: {namespaces: [demo], users: [ns-user], podSelector: {matchLabels: {e2e-moderation: quick}}}
  requireModerator: {timeout: 3s}
- name: moderated
  match: {namespaces: [demo], users: [ns-user]}
  requireModerator: {timeout: 2m, gracePeriod: 5s}
`

// viewerWatches lets viewer watch the sessions in demo, without moderating them (no moderate verb).
const viewerWatches = `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: e2e-moderation-viewer, namespace: demo}
rules:
- apiGroups: [execproxy.dev]
  resources: [execsessions, execsessions/attach]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: e2e-moderation-viewer, namespace: demo}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: e2e-moderation-viewer}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: viewer}]
`

// TestModeratedSession: under a rule that requires a moderator, stock kubectl's `exec -it` (1.28
// SPDY, 1.33 WebSocket) waits, before exec-proxy connects to the kubelet, listed as
// WaitingForModerator; a watch by someone who may not moderate leaves it waiting; admin's join
// (cluster-admin holds the moderate verb), through replica 1 to the replica holding the session,
// starts it; it ends 5 s after its last moderator left, or when the moderator kills it; the start
// record names the moderator, the join record says it moderated. A session without a terminal is
// refused, and one no moderator joins is refused after the rule's timeout.
func TestModeratedSession(t *testing.T) {
	file := filepath.Join(t.TempDir(), "session-policy.yaml")
	writeFile(t, file, moderationPolicy)
	restartExecProxy(t, "--session-policy-file="+file)
	startReplica2(t, "--session-policy-file="+file)
	admin(t, viewerWatches, "apply", "-f", "-")
	t.Cleanup(func() { admin(t, viewerWatches, "delete", "--ignore-not-found", "-f", "-") })

	cases := []struct {
		name string
		c    client
		rt   route
		log  string
		kill bool // the moderator kills the session, rather than leaving it
	}{
		{"session on replica 2, kubectl 1.33 WebSocket, killed by its moderator", clients[1], viaReplica2, "exec-proxy-2-audit.log", true},
		{"session on replica 1, kubectl 1.28 SPDY, its moderator leaves", clients[0], viaExecProxy, "exec-proxy-audit.log", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := marker(t)
			owner := newTerminal(t, 100, 30, tc.c.env, tc.c.path(), "--kubeconfig", kubeconfig("ns-user"+tc.rt.suffix),
				"exec", "-it", "demo", "-c", "main", "--", "env", "M="+m, "sh")
			var id string
			eventually(t, 20*time.Second, "the session to be listed, waiting for a moderator", func() bool {
				res := tc.c.kubectl(t, viaAPIServer, "admin", "", "get", "execsessions", "-n", "demo",
					"-o", `jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.spec.command}{"\n"}{end}`)
				for _, line := range strings.Split(res.stdout, "\n") {
					if f := strings.Fields(line); len(f) > 2 && strings.Contains(line, m) && f[1] == "WaitingForModerator" {
						id = f[0]
					}
				}
				return id != ""
			})

			// viewer may watch, not moderate: the session waits on.
			watcher := newTerminal(t, 100, 30, nil, filepath.Join(repoRoot(), "bin", "kubectl-execproxy"),
				"--kubeconfig", kubeconfig("viewer"), "watch", "-n", "demo", id)
			if start := watchRecords(t, tc.log, id, map[string]int{"watch-start": 1})["watch-start"][0]; start.Annotations[annotation+"moderator"] != "" {
				t.Errorf("viewer's watch counted as a moderator's: %v", start.Annotations)
			}
			if strings.Contains(watcher.screen(), "you moderate") {
				t.Errorf("viewer was told it moderates:\n%s", watcher.screen())
			}
			if phase := admin(t, "", "get", "execsession", "-n", "demo", id, "-o", "jsonpath={.status.phase}"); phase != "WaitingForModerator" {
				t.Errorf("after viewer's watch, phase %q, want WaitingForModerator", phase)
			}

			moderator := newTerminal(t, 100, 30, nil, filepath.Join(repoRoot(), "bin", "kubectl-execproxy"),
				"--kubeconfig", kubeconfig("admin"), "join", "-n", "demo", id)
			moderator.waitFor("[exec-proxy: you moderate this session of ns-user")
			owner.waitFor("[exec-proxy: admin joined this session and can type]")
			owner.typeLine("echo moderated-$((6*7))-$M")
			owner.waitFor("moderated-42-" + m)
			moderator.waitFor("moderated-42-" + m)
			if phase := admin(t, "", "get", "execsession", "-n", "demo", id, "-o", "jsonpath={.status.phase} {.status.moderators}"); phase != `Running ["admin"]` {
				t.Errorf("phase and moderators %q, want Running [\"admin\"]", phase)
			}

			wantReason := "moderator left"
			if tc.kill {
				wantReason = "killed by admin"
				if out, err := plugin(t, kubeconfig("admin"), "kill", "-n", "demo", id); err != nil {
					t.Fatalf("kill: %v\n%s", err, out)
				}
			} else {
				moderator.tmux("send-keys", "-t", "e2e", "C-]")
				owner.waitFor("[exec-proxy: the last moderator left; this session ends in 5s unless a moderator returns]")
			}
			owner.exitStatus() // kubectl exits: the session ended
			records := recordsIn(t, tc.log, "the records of "+id, func(ev auditv1.Event) bool {
				return ev.Annotations[annotation+"session-id"] == id
			}, map[string]int{"start": 1, "end": 1})
			var moderators []string
			start, end := records["start"][0], records["end"][0]
			if json.Unmarshal([]byte(start.Annotations[annotation+"moderators"]), &moderators) != nil || !slices.Equal(moderators, []string{"admin"}) ||
				start.Annotations[annotation+"policy-rule"] != "moderated" {
				t.Errorf("start record: moderators %q, rule %q; want [\"admin\"], moderated", start.Annotations[annotation+"moderators"],
					start.Annotations[annotation+"policy-rule"])
			}
			if end.Annotations[annotation+"reason"] != wantReason {
				t.Errorf("end record's reason %q, want %q", end.Annotations[annotation+"reason"], wantReason)
			}
			join := watchRecords(t, tc.log, id, map[string]int{"join-start": 1, "join-end": 1})["join-start"][0]
			if join.User.Username != "admin" || join.Annotations[annotation+"moderator"] != "true" {
				t.Errorf("join-start record: user %q, moderator %q; want admin, true", join.User.Username, join.Annotations[annotation+"moderator"])
			}
		})
	}

	t.Run("no terminal to moderate", func(t *testing.T) {
		res := clients[1].kubectl(t, viaExecProxy, "ns-user", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "echo", "x")
		wantRefused(t, res, `session policy rule "moderated" requires a moderator, who watches the session's terminal: only exec and attach with a TTY (-it) can be moderated`)
	})
	t.Run("no moderator in time", func(t *testing.T) {
		labelPod(t, "demo", "echo", "e2e-moderation=quick")
		// The label reaches exec-proxy's informer a moment after the API has it.
		eventually(t, 15*time.Second, "the moderated-quick rule to apply to pod echo", func() bool {
			res := clients[1].kubectl(t, viaExecProxy, "ns-user", "", "-n", "demo", "exec", "echo", "--", "echo", "probe")
			return strings.Contains(res.stderr, `rule "moderated-quick"`)
		})
		for _, c := range clients[:2] {
			term := newTerminal(t, 200, 30, c.env, c.path(), "--kubeconfig", kubeconfig("ns-user"+viaExecProxy.suffix),
				"exec", "-it", "echo", "-n", "demo", "--", "sh")
			term.exitStatus()
			if screen := term.tmux("capture-pane", "-p", "-J", "-t", "e2e"); !strings.Contains(screen,
				`session policy rule "moderated-quick" requires a moderator, and none joined within 3s`) {
				t.Errorf("%s: screen\n%s\nwant the rule's refusal after its timeout", c.name, screen)
			}
		}
	})
}
