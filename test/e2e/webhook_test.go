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

// TestAuditWebhook: with a log file and a webhook at once, both get every record; records the
// webhook could not take while it was down are delivered, in order, once it is back.
func TestAuditWebhook(t *testing.T) {
	recv := &auditReceiver{failFirst: 3}
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
	seen := map[string]string{} // auditID → last record kind
	for _, ev := range got {
		id, kind := string(ev.AuditID), ev.Annotations[annotation+"record"]
		if kind == "end" && seen[id] != "start" {
			t.Errorf("session %s: end delivered before its start", id)
		}
		seen[id] = kind
	}
	for _, kind := range []string{"start", "end"} {
		for _, ev := range inLog[kind] {
			if seen[string(ev.AuditID)] != "end" {
				t.Errorf("session %s in the log file but not complete at the webhook: %v", ev.AuditID, seen)
			}
		}
	}
}
