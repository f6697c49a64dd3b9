//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// lockRecord waits for the record of kind in log whose command carries m, and returns it.
func lockRecord(t *testing.T, log, kind, m string) auditv1.Event {
	t.Helper()
	var got auditv1.Event
	eventually(t, 10*time.Second, "the "+kind+" record of "+m+" in "+log, func() bool {
		for _, ev := range auditEvents(t, log) {
			if ev.Annotations[annotation+"record"] == kind && strings.Contains(ev.Annotations[annotation+"command"], m) {
				got = ev
				return true
			}
		}
		return false
	})
	return got
}

// TestLocks: kubectl execproxy lock ends the user's sessions on both replicas within 5 s, with the
// lock as their end reason; refuses their new ones on both with a 403 naming the lock and its reason,
// recorded as such; leaves other users alone; stops applying when --for has passed; and unlock lets
// the user in again.
func TestLocks(t *testing.T) {
	startReplica2(t)
	c := clients[1]
	cfg := kubeconfig("admin-direct")
	t.Cleanup(func() { _, _ = plugin(t, cfg, "unlock", "ns-user") })
	m := marker(t)
	on1 := c.start(t, viaExecProxy, "ns-user", "exec", "demo", "-c", "main", "--", "sh", "-c", "echo "+m+"; sleep 60")
	on2 := c.start(t, viaReplica2, "ns-user", "exec", "demo", "-c", "main", "--", "sh", "-c", "echo "+m+"; sleep 61")
	on1.waitFor(t, m)
	on2.waitFor(t, m)

	const lockFor = 20 * time.Second
	reason := "e2e " + m
	out, err := plugin(t, cfg, "lock", "ns-user", "--reason", reason, "--for", lockFor.String())
	locked := time.Now()
	if err != nil || !strings.Contains(out, "execlock user-ns-user set") {
		t.Fatalf("lock: %v\n%s", err, out)
	}
	for name, s := range map[string]*session{"replica 1": on1, "replica 2": on2} {
		select {
		case <-s.done:
		case <-time.After(time.Until(locked.Add(5 * time.Second))):
			t.Fatalf("the session on %s runs on 5 s after the lock:\n%s", name, s.output())
		}
	}
	endReason := `locked by exec-proxy lock "user-ns-user" (` + reason + `)`
	for _, log := range []string{"exec-proxy-audit.log", "exec-proxy-2-audit.log"} {
		if got := lockRecord(t, log, "end", m).Annotations[annotation+"reason"]; got != endReason {
			t.Errorf("%s: end record's reason %q, want %q", log, got, endReason)
		}
	}

	refused := func(rt route, log string) {
		t.Helper()
		m2 := marker(t)
		res := c.kubectl(t, rt, "ns-user", "", "exec", "demo", "-c", "main", "--", "echo", m2)
		if res.code == 0 || !strings.Contains(res.stderr, `exec-proxy lock "user-ns-user": `+reason) || !strings.Contains(res.stderr, "locked by admin") {
			t.Errorf("%s: a locked user's exec: exit %d %s", rt.name, res.code, res.stderr)
		}
		rec := lockRecord(t, log, "refused", m2)
		if rec.ResponseStatus == nil || rec.ResponseStatus.Code != 403 || !strings.Contains(rec.ResponseStatus.Message, `exec-proxy lock "user-ns-user"`) {
			t.Errorf("%s: refused record %+v", log, rec.ResponseStatus)
		}
	}
	refused(viaExecProxy, "exec-proxy-audit.log")
	refused(viaReplica2, "exec-proxy-2-audit.log")
	if res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "true"); res.code != 0 {
		t.Errorf("another user's exec under the lock: exit %d %s", res.code, res.stderr)
	}
	if out, err := plugin(t, cfg, "locks"); err != nil || !strings.Contains(out, "user-ns-user") || !strings.Contains(out, reason) {
		t.Errorf("locks: %v\n%s", err, out)
	}

	// The lock expires: the user is let in again, without anyone unlocking.
	eventually(t, time.Until(locked.Add(lockFor+10*time.Second)), "the lock to expire", func() bool {
		return c.kubectl(t, viaReplica2, "ns-user", "", "exec", "demo", "-c", "main", "--", "true").code == 0
	})

	// Until unlocked: refused, then let in once unlocked.
	if out, err := plugin(t, cfg, "lock", "ns-user", "--reason", reason); err != nil || !strings.Contains(out, "until unlocked") {
		t.Fatalf("lock again: %v\n%s", err, out)
	}
	eventually(t, 5*time.Second, "the new lock on replica 2", func() bool {
		return c.kubectl(t, viaReplica2, "ns-user", "", "exec", "demo", "-c", "main", "--", "true").code != 0
	})
	if out, err := plugin(t, cfg, "unlock", "ns-user"); err != nil || !strings.Contains(out, "removed") {
		t.Fatalf("unlock: %v\n%s", err, out)
	}
	eventually(t, 5*time.Second, "the user let in on both replicas", func() bool {
		return c.kubectl(t, viaExecProxy, "ns-user", "", "exec", "demo", "-c", "main", "--", "true").code == 0 &&
			c.kubectl(t, viaReplica2, "ns-user", "", "exec", "demo", "-c", "main", "--", "true").code == 0
	})
	if out, err := plugin(t, cfg, "unlock", "ns-user"); err == nil || !strings.Contains(out, "not found") {
		t.Errorf("unlocking again: %v\n%s", err, out)
	}
}
