//go:build e2e

package e2e

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// countsFresh is how old a replica's view of the other's session counts may be while they answer:
// one asking period and one asking timeout (pkg/peers), with a margin for a loaded machine. Waiting
// it is a precondition of the checks that follow, not one of them.
const countsFresh = 3 * time.Second

// replica2Counts asks replica 2 for its session counts as user (a pki/ name: user-<user> or exec-proxy).
func replica2Counts(t *testing.T, certName string) (int, string) {
	t.Helper()
	cfg := userTLS(t, "")
	cfg.ServerName = "exec-proxy.execproxy-system.svc"
	pki := filepath.Join(clusterDir(), "pki")
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, certName+".crt"), filepath.Join(pki, certName+".key"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Certificates = []tls.Certificate{cert}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://127.0.0.1:18444/peer/sessioncounts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body)
}

// TestLimitsAcrossReplicas: --max-sessions-per-user holds across two replicas (sessions spread over
// both, the 429 says so, other users unaffected); only exec-proxy's own identity may read a replica's
// counts; killing replica 2 frees its sessions' slots once its lease expires, not before
// (--peer-counts-failure-policy=fail-closed, the default).
func TestLimitsAcrossReplicas(t *testing.T) {
	const limit = "--max-sessions-per-user=4"
	restartExecProxy(t, limit)
	startReplica2(t, limit)
	eventually(t, 30*time.Second, "replica 2's lease", func() bool {
		return strings.Contains(admin(t, "", "-n", "execproxy-system", "get", "leases", "-o", "name"), "lease.coordination.k8s.io/replica-2")
	})
	c := clients[1]
	m := marker(t)
	var on2 []*session
	for i, rt := range []route{viaExecProxy, viaExecProxy, viaReplica2, viaReplica2} {
		s := c.start(t, rt, "ns-user", "exec", "-i", "demo", "-c", "main", "--", "sh", "-c", "echo holding-"+m+"; cat")
		s.waitFor(t, "holding-"+m)
		if i >= 2 {
			on2 = append(on2, s)
		}
	}
	time.Sleep(countsFresh)

	want := `user "ns-user" has 4 concurrent sessions across 2 replicas, the limit is 4 (--max-sessions-per-user)`
	for _, rt := range []route{viaExecProxy, viaReplica2} {
		wantRefused(t, c.kubectl(t, rt, "ns-user", "", "exec", "demo", "-c", "main", "--", "true"), want)
	}
	if res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "true"); res.code != 0 {
		t.Errorf("another user is refused too: exit %d: %s", res.code, res.stderr)
	}

	// The counts name users: exec-proxy's own identity reads them, a normal user (RBAC) and an
	// admin (exec-proxy's own check) do not.
	if code, body := replica2Counts(t, "exec-proxy"); code != http.StatusOK || !strings.Contains(body, `"ns-user":2`) {
		t.Errorf("exec-proxy asking replica 2: %d %s", code, body)
	} else {
		var counts struct{ Total int }
		if err := json.Unmarshal([]byte(body), &counts); err != nil || counts.Total < 2 {
			t.Errorf("replica 2's counts: %v %s", err, body)
		}
	}
	for _, who := range []string{"user-ns-user", "user-admin"} {
		if code, body := replica2Counts(t, who); code != http.StatusForbidden || strings.Contains(body, `"users"`) {
			t.Errorf("%s asking replica 2: %d %s, want 403", who, code, body)
		}
	}

	// Replica 2 dies without a word: its sessions end, its lease stays until it expires.
	killed := time.Now()
	signalAndWait(t, "exec-proxy-2", syscall.SIGKILL, 10*time.Second)
	for _, s := range on2 {
		s.stop()
	}
	// fail-closed: its sessions count as last heard while its lease is current. The lease was
	// renewed at most 10 s before the kill and lasts 30 s: checked only while that surely holds.
	res := c.kubectl(t, viaExecProxy, "ns-user", "", "exec", "demo", "-c", "main", "--", "true")
	if time.Since(killed) < 15*time.Second {
		wantRefused(t, res, want)
	} else {
		t.Logf("not checking the refusal right after the kill: %v passed", time.Since(killed))
	}
	// Lease expiry (30 s) and one asking (countsFresh), with a margin.
	eventually(t, 45*time.Second, "replica 2's slots to be freed", func() bool {
		return c.kubectl(t, viaExecProxy, "ns-user", "", "exec", "demo", "-c", "main", "--", "true").code == 0
	})
}
