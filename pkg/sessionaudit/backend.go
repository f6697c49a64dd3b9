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

	WebhookConfigFile string // kubeconfig format, as kube-apiserver's --audit-webhook-config-file
	WebhookBuffer     int    // events held while the webhook is down
	WebhookBatchWait  time.Duration
	WebhookRetry      wait.Backoff
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

// NewBackend builds the backends of cfg with k8s.io/apiserver's audit plugins; nil when none is set.
// The log backend writes synchronously, so its result is known when a start record is sent.
func NewBackend(cfg BackendConfig) (audit.Backend, error) {
	var backends []audit.Backend
	if cfg.LogPath != "" {
		out, err := logWriter(cfg)
		if err != nil {
			return nil, err
		}
		backends = append(backends, pluginlog.NewBackend(out, pluginlog.FormatJson, auditv1.SchemeGroupVersion))
	}
	if cfg.WebhookConfigFile != "" {
		hook, err := pluginwebhook.NewBackend(cfg.WebhookConfigFile, auditv1.SchemeGroupVersion, cfg.WebhookRetry, nil)
		if err != nil {
			return nil, fmt.Errorf("session audit webhook: %w", err)
		}
		backends = append(backends, pluginbuffered.NewBackend(hook, pluginbuffered.BatchConfig{
			BufferSize: cfg.WebhookBuffer, MaxBatchSize: 100, MaxBatchWait: cfg.WebhookBatchWait,
		}))
	}
	if len(backends) == 0 {
		return nil, nil
	}
	return audit.Union(backends...), nil
}
