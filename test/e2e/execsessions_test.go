//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestExecSessions: live sessions are listed as execsessions through kube-apiserver, and deleting
// one ends it; its end record says who killed it. Listing and deleting follow RBAC.
func TestExecSessions(t *testing.T) {
	for _, c := range []client{clients[0], clients[1]} {
		t.Run(c.name, func(t *testing.T) {
			m := marker(t)
			s := c.start(t, viaExecProxy, "ns-user", "exec", "demo", "-c", "main", "--", "sh", "-c", "echo "+m+"; sleep 60")
			s.waitFor(t, m)
			var id string
			eventually(t, 10*time.Second, "the session to be listed", func() bool {
				res := c.kubectl(t, viaAPIServer, "admin", "", "get", "execsessions", "-A", "--field-selector", "spec.user=ns-user",
					"-o", `jsonpath={range .items[*]}{.metadata.name} {.spec.command}{"\n"}{end}`)
				for _, line := range strings.Split(res.stdout, "\n") {
					if strings.Contains(line, m) {
						id = strings.Fields(line)[0]
					}
				}
				return id != ""
			})
			if res := c.kubectl(t, viaAPIServer, "admin", "", "get", "execsessions", "-n", "demo", id); res.code != 0 ||
				!strings.Contains(res.stdout, "ns-user") || !strings.Contains(res.stdout, "sh -c echo "+m) {
				t.Errorf("kubectl get execsession: exit %d\n%s%s", res.code, res.stdout, res.stderr)
			}
			for _, user := range []string{"viewer", "ns-user"} {
				if res := c.kubectl(t, viaAPIServer, user, "", "delete", "execsession", "-n", "demo", id); res.code == 0 || !strings.Contains(res.stderr, "forbidden") {
					t.Errorf("%s deleted a session: exit %d %s", user, res.code, res.stderr)
				}
			}
			if res := c.kubectl(t, viaAPIServer, "admin", "", "delete", "execsession", "-n", "demo", id); res.code != 0 {
				t.Fatalf("kubectl delete execsession: exit %d: %s", res.code, res.stderr)
			}
			select {
			case <-s.done:
			case <-time.After(20 * time.Second):
				t.Fatalf("the session still runs after it was deleted:\n%s", s.output())
			}
			end := sessionRecords(t, m, map[string]int{"start": 1, "end": 1})["end"][0]
			if string(end.AuditID) != id || end.Annotations[annotation+"reason"] != "killed by admin" {
				t.Errorf("end record of %s: %s, %+v", id, end.AuditID, end.Annotations)
			}
			if res := c.kubectl(t, viaAPIServer, "admin", "", "get", "execsession", "-n", "demo", id); res.code == 0 || !strings.Contains(res.stderr, "NotFound") {
				t.Errorf("the deleted session is still listed: %s%s", res.stdout, res.stderr)
			}
		})
	}
}
