//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

// sessionID returns the id of the one session whose command has m, from a replica's audit log.
func sessionID(t *testing.T, log, m string) string {
	t.Helper()
	var id string
	eventually(t, 10*time.Second, "the end record of "+m+" in "+log, func() bool {
		for _, ev := range auditEvents(t, log) {
			if strings.Contains(ev.Annotations[annotation+"command"], m) && ev.Annotations[annotation+"record"] == "end" {
				id = string(ev.AuditID)
			}
		}
		return id != ""
	})
	return id
}

// TestRecordingsThroughTheAPI: a session's recording is read through kube-apiserver as
// execsessions/ID/recording, from whichever replica recorded it, after the session ended; only in
// its namespace, and only with get on execsessions/recording. The plugin replays it by ID.
func TestRecordingsThroughTheAPI(t *testing.T) {
	restartExecProxy(t, "--record-non-tty")
	startReplica2(t, "--record-non-tty")
	c := clients[1]
	recorded := map[string]string{} // id → marker
	for _, rt := range []route{viaExecProxy, viaReplica2} {
		m := marker(t)
		if res := c.kubectl(t, rt, "admin", "", "exec", "demo", "-c", "main", "--", "echo", m); !strings.Contains(res.stdout, m) {
			t.Fatalf("exec via %s: exit %d %s", rt.name, res.code, res.stderr)
		}
		log := map[string]string{viaExecProxy.name: "exec-proxy-audit.log", viaReplica2.name: "exec-proxy-2-audit.log"}[rt.name]
		recorded[sessionID(t, log, m)] = m
	}
	raw := func(user, namespace, id string) result {
		return c.kubectl(t, viaAPIServer, user, "", "get", "--raw", "/apis/execproxy.dev/v1alpha1/namespaces/"+namespace+"/execsessions/"+id+"/recording")
	}
	for id, m := range recorded {
		res := raw("admin", "demo", id)
		if res.code != 0 || !strings.Contains(res.stdout, `"version":2`) || !strings.Contains(res.stdout, m) || !strings.Contains(res.stdout, `"session":"`+id+`"`) {
			t.Errorf("recording of %s: exit %d %q %s", id, res.code, res.stdout, res.stderr)
		}
		if res := raw("admin", "default", id); res.code == 0 || !strings.Contains(res.stderr, "NotFound") {
			t.Errorf("recording of %s in another namespace: exit %d %s", id, res.code, res.stderr)
		}
		if res := raw("ns-user", "demo", id); res.code == 0 || !strings.Contains(res.stderr, "Forbidden") {
			t.Errorf("ns-user read recording %s: exit %d %s", id, res.code, res.stderr)
		}
		out, err := plugin(t, kubeconfig("admin-direct"), "replay", id, "-n", "demo", "--speed", "1000")
		if err != nil || !strings.Contains(out, m) {
			t.Errorf("kubectl execproxy replay %s: %v %q", id, err, out)
		}
	}
	if res := raw("admin", "demo", "no-such-session"); res.code == 0 || !strings.Contains(res.stderr, "NotFound") {
		t.Errorf("recording of no session: exit %d %s", res.code, res.stderr)
	}
}
