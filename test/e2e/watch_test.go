//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// watchRecords waits for the watch (or join) records of session id in the audit log logName, by record kind.
func watchRecords(t *testing.T, logName, id string, want map[string]int) map[string][]auditv1.Event {
	t.Helper()
	return recordsIn(t, logName, "the watch records of "+id, func(ev auditv1.Event) bool {
		return ev.Annotations[annotation+"watched-session"] == id
	}, want)
}

// TestWatchSession: kubectl execproxy watch, through kube-apiserver (which reaches replica 1
// only), shows a live TTY session of either replica: what is on its screen, then what comes, until
// the session ends or the watcher leaves; each watch has a start and an end record, on the replica
// that holds the session, naming the watcher; a user without get on execsessions/attach is refused.
func TestWatchSession(t *testing.T) {
	startReplica2(t)
	cases := []struct {
		name   string
		c      client
		rt     route
		log    string
		leaves bool // the watcher presses Ctrl-C rather than the session ending
	}{
		{"session on replica 2, kubectl 1.33 WebSocket", clients[1], viaReplica2, "exec-proxy-2-audit.log", false},
		{"session on replica 1, kubectl 1.28 SPDY", clients[0], viaExecProxy, "exec-proxy-audit.log", true},
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

			refused, err := plugin(t, kubeconfig("ns-user"), "watch", "-n", "demo", id)
			if err == nil || !strings.Contains(refused, `cannot get resource "execsessions/attach"`) {
				t.Errorf("ns-user's watch: %v\n%s\nwant refused, naming execsessions/attach", err, refused)
			}

			watcher := newTerminal(t, 100, 30, nil, filepath.Join(repoRoot(), "bin", "kubectl-execproxy"),
				"--kubeconfig", kubeconfig("admin"), "watch", "-n", "demo", id)
			watcher.waitFor("before-42-" + m) // what was on the screen before the watch began
			owner.typeLine("echo after-$((6*7))-" + m)
			watcher.waitFor("after-42-" + m) // what came after
			watcher.typeLine("echo from-the-watcher-" + m)
			time.Sleep(500 * time.Millisecond)
			if strings.Contains(owner.screen(), "from-the-watcher") {
				t.Errorf("the watcher's typing reached the session:\n%s", owner.screen())
			}
			reason := "the session ended"
			if tc.leaves {
				watcher.tmux("send-keys", "-t", "e2e", "C-c")
				reason = "the watcher left"
			} else {
				owner.typeLine("exit")
				watcher.waitFor("ended")
			}
			if status := watcher.exitStatus(); status != "0" {
				t.Errorf("watch exit status %s, want 0; screen:\n%s", status, watcher.screen())
			}
			records := watchRecords(t, tc.log, id, map[string]int{"watch-start": 1, "watch-end": 1})
			end := records["watch-end"][0]
			if end.User.Username != "admin" || end.Annotations[annotation+"reason"] != reason ||
				end.ObjectRef == nil || end.ObjectRef.Subresource != "attach" || end.ObjectRef.Name != id {
				t.Errorf("watch-end record: user %q, reason %q, object %+v; want admin, %q, execsessions/attach %s",
					end.User.Username, end.Annotations[annotation+"reason"], end.ObjectRef, reason, id)
			}
			if tc.leaves {
				owner.typeLine("exit")
			}
		})
	}
}
