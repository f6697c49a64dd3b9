//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// viaReplica2 is kubectl straight to the second replica, which kube-apiserver never reaches.
var viaReplica2 = route{name: "replica-2", suffix: "-replica2"}

// startReplica2 runs a second exec-proxy (hack/cluster/exec-proxy.sh, EXEC_PROXY_REPLICA=2) with extra
// flags for the test, with kubeconfigs of admin and ns-user straight to it.
func startReplica2(t *testing.T, extra ...string) {
	t.Helper()
	script := func(action string) {
		cmd := exec.Command("hack/cluster/exec-proxy.sh", action)
		cmd.Dir = filepath.Join(clusterDir(), "..")
		cmd.Env = append(append(os.Environ(), execProxyEnv...), "EXEC_PROXY_REPLICA=2", "EXEC_PROXY_EXTRA_ARGS="+strings.Join(extra, " "))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("exec-proxy.sh %s (replica 2): %v\n%s", action, err, out)
		}
	}
	script("up")
	t.Cleanup(func() {
		script("down")
		// A replica killed outright leaves its lease until it expires: peers would warn until then.
		admin(t, "", "-n", "execproxy-system", "delete", "lease", "replica-2", "--ignore-not-found")
	})
	pki := filepath.Join(clusterDir(), "pki")
	for _, user := range []string{"admin", "ns-user"} {
		cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: r2, cluster: {server: "https://127.0.0.1:18444%[1]s", certificate-authority: %[2]q, tls-server-name: exec-proxy.execproxy-system.svc}}]
users: [{name: %[3]s, user: {client-certificate: %[4]q, client-key: %[5]q}}]
contexts: [{name: r2, context: {cluster: r2, user: %[3]s, namespace: demo}}]
current-context: r2
`, kubeRoute, filepath.Join(pki, "ca.crt"), user, filepath.Join(pki, "user-"+user+".crt"), filepath.Join(pki, "user-"+user+".key"))
		path := kubeconfig(user + viaReplica2.suffix)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(path) })
	}
}

// listed returns id → replica of the sessions kubectl lists through kube-apiserver whose command has m.
func listed(t *testing.T, c client, m string, args ...string) (map[string]string, result) {
	t.Helper()
	res := c.kubectl(t, viaAPIServer, "admin", "", append([]string{"get", "execsessions", "-A",
		"-o", `jsonpath={range .items[*]}{.metadata.name} {.status.replica} {.spec.command}{"\n"}{end}`}, args...)...)
	out := map[string]string{}
	for _, line := range strings.Split(res.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 2 && strings.Contains(line, m) {
			out[f[0]] = f[1]
		}
	}
	return out, res
}

// TestReplicas: with two replicas, listing, getting and deleting execsessions through kube-apiserver
// (which reaches replica 1 only) covers the sessions replica 2 holds, authorized by replica 1 for the
// user; a replica that cannot answer is named in a warning, not hidden.
func TestReplicas(t *testing.T) {
	startReplica2(t)
	c := clients[1]
	m := marker(t)
	on1 := c.start(t, viaExecProxy, "ns-user", "exec", "demo", "-c", "main", "--", "sh", "-c", "echo "+m+"; sleep 60")
	on2 := c.start(t, viaReplica2, "ns-user", "exec", "demo", "-c", "main", "--", "sh", "-c", "echo "+m+"; sleep 61")
	on1.waitFor(t, m)
	on2.waitFor(t, m)
	var sessions map[string]string
	eventually(t, 20*time.Second, "both sessions to be listed", func() bool {
		sessions, _ = listed(t, c, m)
		return len(sessions) == 2
	})
	var id2 string
	for id, replica := range sessions {
		if replica == "replica-2" {
			id2 = id
		} else if replica != "replica-1" {
			t.Errorf("session %s on replica %q", id, replica)
		}
	}
	if id2 == "" {
		t.Fatalf("no session of replica-2 among %v", sessions)
	}
	if got, _ := listed(t, c, m, "--field-selector", "status.node=127.0.0.1,spec.user=ns-user"); len(got) != 2 {
		t.Errorf("field selector across replicas: %v", got)
	}
	if res := c.kubectl(t, viaAPIServer, "admin", "", "get", "execsession", "-n", "demo", id2, "-o", "jsonpath={.status.replica}"); res.stdout != "replica-2" {
		t.Errorf("get of replica 2's session: exit %d %q %s", res.code, res.stdout, res.stderr)
	}
	// Replica 1 authorizes the user before it asks replica 2.
	if res := c.kubectl(t, viaAPIServer, "viewer", "", "delete", "execsession", "-n", "demo", id2); res.code == 0 || !strings.Contains(res.stderr, "forbidden") {
		t.Errorf("viewer deleted a session: exit %d %s", res.code, res.stderr)
	}
	killSession(t, c, id2, on2)
	eventually(t, 10*time.Second, "replica 2's end record", func() bool {
		for _, ev := range auditEvents(t, "exec-proxy-2-audit.log") {
			if string(ev.AuditID) == id2 && ev.Annotations[annotation+"record"] == "end" {
				if reason := ev.Annotations[annotation+"reason"]; reason != "killed by admin" {
					t.Fatalf("end record of %s: reason %q", id2, reason)
				}
				return true
			}
		}
		return false
	})

	// Replica 2 dies without a word: its lease stays until it expires.
	signalAndWait(t, "exec-proxy-2", syscall.SIGKILL, 10*time.Second)
	got, res := listed(t, c, m)
	if res.code != 0 || len(got) != 1 || !strings.Contains(res.stderr, "the sessions of exec-proxy replica replica-2 at 127.0.0.1:18444 are not listed") {
		t.Errorf("list with replica 2 down: exit %d, %v, stderr %s", res.code, got, res.stderr)
	}
	res = c.kubectl(t, viaAPIServer, "admin", "", "get", "execsession", "-n", "demo", "no-such-session")
	if res.code == 0 || !strings.Contains(res.stderr, `execsession "no-such-session" is not on exec-proxy replica replica-1, and other replicas could not be asked`) {
		t.Errorf("get with replica 2 down: exit %d %s", res.code, res.stderr)
	}
}
