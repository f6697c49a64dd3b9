package sessionaudit

import (
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
	"k8s.io/apimachinery/pkg/util/wait"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/apiserver/pkg/audit"
	pluginbuffered "k8s.io/apiserver/plugin/pkg/audit/buffered"
	pluginlog "k8s.io/apiserver/plugin/pkg/audit/log"
	pluginwebhook "k8s.io/apiserver/plugin/pkg/audit/webhook"
)

// BackendConfig says where records go: a log file, a webhook, or both.
type BackendConfig struct {
	LogPath       string // "-" for standard output
	LogMaxAgeDays int
	LogMaxBackups int
	LogMaxSizeMB  int

	WebhookConfigFile      string // kubeconfig format, as kube-apiserver's --audit-webhook-config-file
	WebhookBuffer          int    // records held while the webhook is down
	WebhookBatchWait       time.Duration
	WebhookInitialBackoff  time.Duration // first wait before a batch is tried again; it doubles up to 30s
	WebhookShutdownTimeout time.Duration // how long shutdown waits for the webhook to take what is held
}

// logWriter is a rotating file, or for "-", a device or a pipe, the file itself: those are never
// rotated (renamed).
func logWriter(cfg BackendConfig) (io.Writer, error) {
	if cfg.LogPath == "-" {
		return os.Stdout, nil
	}
	f, err := os.OpenFile(cfg.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("session audit log: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("session audit log: %w", err)
	}
	if !info.Mode().IsRegular() {
		return f, nil
	}
	_ = f.Close()
	return &lumberjack.Logger{Filename: cfg.LogPath, MaxAge: cfg.LogMaxAgeDays, MaxBackups: cfg.LogMaxBackups, MaxSize: cfg.LogMaxSizeMB}, nil
}

// backends are the configured backends; Shutdown bounds how long the webhook is waited for.
type backends struct {
	audit.Backend
	retry   *retryingBackend
	timeout time.Duration
}

func (b *backends) Shutdown() {
	if b.retry != nil {
		b.retry.abandonAfter(b.timeout)
	}
	b.Backend.Shutdown()
}

// NewBackend builds the backends of cfg with k8s.io/apiserver's audit plugins; nil when none is set.
// The log backend writes synchronously, so its result is known when a start record is sent; the
// webhook's is known to be accepted for delivery (see webhookQueue).
func NewBackend(cfg BackendConfig) (audit.Backend, error) {
	b := &backends{timeout: cfg.WebhookShutdownTimeout}
	var backends []audit.Backend
	if cfg.LogPath != "" {
		out, err := logWriter(cfg)
		if err != nil {
			return nil, err
		}
		backends = append(backends, pluginlog.NewBackend(out, pluginlog.FormatJson, auditv1.SchemeGroupVersion))
	}
	if cfg.WebhookConfigFile != "" {
		// One try per call: retryingBackend does the waiting, without a limit on the tries.
		hook, err := pluginwebhook.NewBackend(cfg.WebhookConfigFile, auditv1.SchemeGroupVersion, wait.Backoff{Steps: 1}, nil)
		if err != nil {
			return nil, fmt.Errorf("session audit webhook: %w", err)
		}
		queue := &webhookQueue{limit: int64(cfg.WebhookBuffer)}
		b.retry = newRetryingBackend(hook, queue, cfg.WebhookInitialBackoff)
		// Synchronous delivery (no AsyncDelegate) keeps the records in order.
		buffered := pluginbuffered.NewBackend(b.retry, pluginbuffered.BatchConfig{
			BufferSize: cfg.WebhookBuffer, MaxBatchSize: 100, MaxBatchWait: cfg.WebhookBatchWait,
		})
		backends = append(backends, &gatedBackend{Backend: buffered, queue: queue})
	}
	if len(backends) == 0 {
		return nil, nil
	}
	b.Backend = audit.Union(backends...)
	return b, nil
}
