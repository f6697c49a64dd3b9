//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// auditReceiver is an audit webhook: it answers 503 to the first failFirst batches, as a receiver
// that is down for a while, then keeps what it is sent.
type auditReceiver struct {
	mu        sync.Mutex
	failFirst int
	refused   int
	events    []auditv1.Event
}

func (r *auditReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refused < r.failFirst {
		r.refused++
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	var list auditv1.EventList
	if err := json.NewDecoder(req.Body).Decode(&list); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.events = append(r.events, list.Items...)
}

// up ends the receiver's outage.
func (r *auditReceiver) up() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failFirst = 0
}

func (r *auditReceiver) refusals() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused
}

func (r *auditReceiver) received(m string) []auditv1.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []auditv1.Event
	for _, ev := range r.events {
		if strings.Contains(ev.Annotations[annotation+"command"], m) {
			out = append(out, ev)
		}
	}
	return out
}

// serveAuditWebhook serves recv on loopback and returns a webhook kubeconfig for it.
func serveAuditWebhook(t *testing.T, recv *auditReceiver) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: recv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	cfg := filepath.Join(t.TempDir(), "webhook.kubeconfig")
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: hook, cluster: {server: "http://%s/audit"}}]
users: [{name: exec-proxy, user: {}}]
contexts: [{name: hook, context: {cluster: hook, user: exec-proxy}}]
current-context: hook
`, l.Addr())
	if err := os.WriteFile(cfg, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// inOrder checks that each session's end reached the webhook after its start, and returns the
// last record kind of each session.
func inOrder(t *testing.T, got []auditv1.Event) map[string]string {
	t.Helper()
	seen := map[string]string{} // auditID → last record kind
	for _, ev := range got {
		id, kind := string(ev.AuditID), ev.Annotations[annotation+"record"]
		if kind == "end" && seen[id] != "start" {
			t.Errorf("session %s: end delivered before its start", id)
		}
		seen[id] = kind
	}
	return seen
}

// TestAuditWebhook: with a log file and a webhook at once, both get every record; records the
// webhook could not take while it was down are delivered, in order, once it is back.
func TestAuditWebhook(t *testing.T) {
	recv := &auditReceiver{failFirst: 3}
	cfg := serveAuditWebhook(t, recv)
	restartExecProxy(t, "--session-audit-webhook-config-file="+cfg, "--session-audit-webhook-batch-max-wait=200ms")

	m := marker(t)
	for _, c := range []client{clients[0], clients[1]} {
		if res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "echo", m); res.code != 0 {
			t.Fatalf("%s: exit %d: %s", c.name, res.code, res.stderr)
		}
	}
	inLog := sessionRecords(t, m, map[string]int{"start": 2, "end": 2})
	var got []auditv1.Event
	eventually(t, 60*time.Second, "the webhook to receive the records after its outage", func() bool {
		got = recv.received(m)
		return len(got) == 4
	})
	if recv.refused < recv.failFirst {
		t.Fatalf("the webhook was never down: %d refusals", recv.refused)
	}
	seen := inOrder(t, got)
	for _, kind := range []string{"start", "end"} {
		for _, ev := range inLog[kind] {
			if seen[string(ev.AuditID)] != "end" {
				t.Errorf("session %s in the log file but not complete at the webhook: %v", ev.AuditID, seen)
			}
		}
	}
}

// TestAuditWebhookOutage: while the webhook is down, records wait in the buffer; a session whose
// start record does not fit is refused (fail-closed) with a 503; once the webhook is back it gets
// every held record, in order, and sessions run again.
func TestAuditWebhookOutage(t *testing.T) {
	recv := &auditReceiver{failFirst: 1 << 30}
	cfg := serveAuditWebhook(t, recv)
	restartExecProxy(t, "--session-audit-webhook-config-file="+cfg, "--session-audit-webhook-batch-max-wait=100ms",
		"--session-audit-webhook-buffer=4", "--session-audit-webhook-initial-backoff=100ms")

	m := marker(t)
	for _, c := range []client{clients[0], clients[1]} { // 4 records: the buffer is full
		if res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "echo", m); res.code != 0 {
			t.Fatalf("%s: exit %d: %s", c.name, res.code, res.stderr)
		}
	}
	for _, c := range []client{clients[0], clients[1]} {
		res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "echo", m)
		if res.code == 0 || !strings.Contains(res.stderr, "could not write the session's audit record") || strings.Contains(res.stdout, m) {
			t.Errorf("%s with the buffer full: exit %d, stdout %q, stderr %q; want the fail-closed refusal", c.name, res.code, res.stdout, res.stderr)
		}
	}
	eventually(t, 30*time.Second, "the webhook to be tried a few times", func() bool { return recv.refusals() >= 5 })
	recv.up()
	var got []auditv1.Event
	eventually(t, 60*time.Second, "the held records to reach the webhook", func() bool {
		got = recv.received(m)
		return len(got) >= 4
	})
	if seen := inOrder(t, got); len(got) != 4 || len(seen) != 2 {
		t.Errorf("webhook got %d records of %d sessions, want the 4 of the 2 sessions that ran: %v", len(got), len(seen), seen)
	}
	if res := clients[1].kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "echo", m); res.code != 0 {
		t.Errorf("after the outage: exit %d: %s", res.code, res.stderr)
	}
}
