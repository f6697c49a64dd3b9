package setup

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/wait"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	pluginwebhook "k8s.io/apiserver/plugin/pkg/audit/webhook"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func TestReceiver(t *testing.T) {
	for _, c := range []struct {
		name              string
		method, body      string
		wantCode          int
		wantEvents, wantR int64
	}{
		{"an EventList of two", http.MethodPost, `{"apiVersion":"audit.k8s.io/v1","kind":"EventList","items":[{"auditID":"a"},{"auditID":"b"}]}`, 200, 2, 0},
		{"an empty EventList", http.MethodPost, `{"apiVersion":"audit.k8s.io/v1","kind":"EventList","items":[]}`, 200, 0, 0},
		{"not JSON", http.MethodPost, `<html>`, 400, 0, 1},
		{"another kind", http.MethodPost, `{"apiVersion":"v1","kind":"PodList","items":[]}`, 400, 0, 1},
		{"another version", http.MethodPost, `{"apiVersion":"audit.k8s.io/v1beta1","kind":"EventList","items":[{}]}`, 400, 0, 1},
		{"a GET", http.MethodGet, ``, 405, 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r Receiver
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(c.method, "/audit", strings.NewReader(c.body)))
			if w.Code != c.wantCode || r.Events() != c.wantEvents || r.Refused() != c.wantR {
				t.Errorf("HTTP %d, %d events, %d refused; want %d, %d, %d", w.Code, r.Events(), r.Refused(), c.wantCode, c.wantEvents, c.wantR)
			}
		})
	}
}

// TestServeWebhook: the kubeconfig written, loaded as client-go loads any, reaches the receiver
// over TLS (its CA data trusts the throwaway certificate); and kube-apiserver's webhook backend,
// the one exec-proxy runs, delivers an event through it.
func TestServeWebhook(t *testing.T) {
	defer noLeak(t)()
	hook, err := ServeWebhook(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := hook.Close(); err != nil {
			t.Error(err)
		}
	}()
	cfg, err := clientcmd.BuildConfigFromFlags("", hook.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != hook.URL || len(cfg.CAData) == 0 {
		t.Fatalf("kubeconfig: server %q, %d bytes of CA data; want %q and the certificate", cfg.Host, len(cfg.CAData), hook.URL)
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	resp, err := client.Post(cfg.Host, "application/json", strings.NewReader(`{"apiVersion":"audit.k8s.io/v1","kind":"EventList","items":[{"auditID":"x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || hook.Events() != 1 {
		t.Fatalf("POST: HTTP %d, %d events received; want 200 and 1", resp.StatusCode, hook.Events())
	}

	backend, err := pluginwebhook.NewBackend(hook.Kubeconfig, auditv1.SchemeGroupVersion, wait.Backoff{Steps: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Shutdown()
	if !backend.ProcessEvents(&auditinternal.Event{AuditID: "y", Level: auditinternal.LevelMetadata}, &auditinternal.Event{AuditID: "z", Level: auditinternal.LevelMetadata}) {
		t.Fatal("the webhook backend could not deliver")
	}
	if hook.Events() != 3 || hook.Refused() != 0 {
		t.Fatalf("%d events, %d refused; want 3 and 0", hook.Events(), hook.Refused())
	}
}

func TestServeWebhookPathWithSpace(t *testing.T) {
	dir := t.TempDir() + "/with space"
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if hook, err := ServeWebhook(dir); err == nil {
		hook.Close()
		t.Fatal("ServeWebhook took a directory with a space, which EXEC_PROXY_EXTRA_ARGS would split")
	}
}
