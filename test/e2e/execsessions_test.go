//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
			killSession(t, c, id, s)
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

// killSession deletes execsession id as admin through kube-apiserver and waits for kubectl's
// session s to end.
func killSession(t *testing.T, c client, id string, s *session) {
	t.Helper()
	if res := c.kubectl(t, viaAPIServer, "admin", "", "delete", "execsession", "-n", "demo", id); res.code != 0 {
		t.Fatalf("kubectl delete execsession %s: exit %d: %s", id, res.code, res.stderr)
	}
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("session %s still runs after it was deleted:\n%s", id, s.output())
	}
}

// TestImpersonationRecorded: a user who sends Impersonate-* headers straight to exec-proxy (kubectl
// --as, with a kubeconfig for exec-proxy itself) is in the records as kube-apiserver's audit has
// it: user is who authenticated, impersonatedUser whom the session ran as.
func TestImpersonationRecorded(t *testing.T) {
	pki := filepath.Join(clusterDir(), "pki")
	cfg := filepath.Join(t.TempDir(), "straight.kubeconfig")
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: exec-proxy, cluster: {server: "https://127.0.0.1:18443%s", certificate-authority: %q, tls-server-name: exec-proxy.execproxy-system.svc}}]
users: [{name: admin, user: {client-certificate: %q, client-key: %q}}]
contexts: [{name: straight, context: {cluster: exec-proxy, user: admin, namespace: demo}}]
current-context: straight
`, kubeRoute, filepath.Join(pki, "ca.crt"), filepath.Join(pki, "user-admin.crt"), filepath.Join(pki, "user-admin.key"))
	if err := os.WriteFile(cfg, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []client{clients[0], clients[1]} {
		t.Run(c.name, func(t *testing.T) {
			m := marker(t)
			cmd := exec.Command(c.path(), "--kubeconfig", cfg, "--as", "ns-user", "exec", "demo", "-c", "main", "--", "echo", m)
			cmd.Env = append(os.Environ(), c.env...)
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), m) {
				t.Fatalf("kubectl --as ns-user straight to exec-proxy: %v\n%s", err, out)
			}
			for _, ev := range sessionRecords(t, m, map[string]int{"start": 1, "end": 1}) {
				if ev[0].User.Username != "admin" || ev[0].ImpersonatedUser == nil || ev[0].ImpersonatedUser.Username != "ns-user" {
					t.Errorf("%s record: user %+v, impersonated %+v", ev[0].Annotations[annotation+"record"], ev[0].User, ev[0].ImpersonatedUser)
				}
			}
		})
	}
}
