package sessionaudit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/apimachinery/pkg/util/wait"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// receiver is an audit webhook that refuses its first down batches, then keeps the session ids
// of what it receives.
type receiver struct {
	mu      sync.Mutex
	down    int
	tries   int
	got     []string
	arrived chan struct{}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tries++; r.tries <= r.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var list auditv1.EventList
	if err := json.NewDecoder(req.Body).Decode(&list); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, ev := range list.Items {
		r.got = append(r.got, string(ev.AuditID))
		r.arrived <- struct{}{}
	}
}

func (r *receiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// webhookBackend runs NewBackend against recv with a small buffer and short waits.
func webhookBackend(t *testing.T, recv *receiver, buffer int, shutdownTimeout time.Duration) (*Auditor, func()) {
	srv := httptest.NewServer(recv)
	cfg := filepath.Join(t.TempDir(), "webhook.kubeconfig")
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: hook, cluster: {server: %q}}]
contexts: [{name: hook, context: {cluster: hook}}]
current-context: hook
`, srv.URL)
	if err := os.WriteFile(cfg, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := NewBackend(BackendConfig{WebhookConfigFile: cfg, WebhookBuffer: buffer, WebhookBatchWait: time.Millisecond,
		WebhookInitialBackoff: time.Millisecond, WebhookShutdownTimeout: shutdownTimeout})
	if err != nil {
		t.Fatal(err)
	}
	r := NewAuditor(b, FailClosed)
	stop := make(chan struct{})
	if err := r.Run(stop); err != nil {
		t.Fatal(err)
	}
	return r, func() {
		close(stop)
		r.Shutdown()
		srv.Close()
	}
}

func TestWebhookDelivery(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer func(d time.Duration) { webhookMaxBackoff = d }(webhookMaxBackoff)
	webhookMaxBackoff = 5 * time.Millisecond
	cases := []struct {
		name     string
		down     int // batches the webhook refuses
		buffer   int
		sessions int
		accepted int // start records accepted (the others refused by fail-closed)
		shutdown time.Duration
		want     int // records delivered
	}{
		{"up", 0, 10, 3, 3, time.Second, 3},
		// Upstream's webhook backend alone gives a batch up after its backoff steps (10 by default).
		{"outage longer than upstream's retries", 25, 10, 3, 3, 10 * time.Second, 3},
		{"outage past the buffer", 1 << 30, 2, 3, 2, 50 * time.Millisecond, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recv := &receiver{down: tc.down, arrived: make(chan struct{}, tc.sessions)}
			r, stop := webhookBackend(t, recv, tc.buffer, tc.shutdown)
			accepted := 0
			var ids []string
			for i := 0; i < tc.sessions; i++ {
				id := fmt.Sprint("session-", i)
				if err := r.Started(&Attempt{rec: Record{Requester: Requester{SessionID: id}, Target: Target{Kind: "exec"}}}); err == nil {
					accepted++
					ids = append(ids, id)
				}
			}
			if accepted != tc.accepted {
				t.Errorf("%d start records accepted, want %d", accepted, tc.accepted)
			}
			timeout := time.After(wait.ForeverTestTimeout)
			for i := 0; i < tc.want; i++ {
				select {
				case <-recv.arrived:
				case <-timeout:
					i = tc.want
				}
			}
			stop() // returns within the shutdown timeout even when the webhook never comes back
			if got := recv.received(); len(got) != tc.want || (tc.want > 0 && fmt.Sprint(got) != fmt.Sprint(ids)) {
				t.Errorf("delivered %v, want %d of %v in order", got, tc.want, ids)
			}
		})
	}
}
