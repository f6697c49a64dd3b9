package options

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/exec-proxy/exec-proxy/pkg/recording"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// AuditOptions say where session audit records go. Names follow kube-apiserver's --audit-* flags.
type AuditOptions struct {
	sessionaudit.BackendConfig
	FailurePolicy string
	Recording     recording.Config
	// RecordingFailurePolicy fills in Recording.FailClosed.
	RecordingFailurePolicy string
	// RecordingBucket is a gocloud.dev/blob URL; it may carry secrets, so it is never logged whole.
	RecordingBucket         string
	RecordingUploadInterval time.Duration
	Commands                bool
}

func NewAuditOptions() *AuditOptions {
	return &AuditOptions{
		BackendConfig: sessionaudit.BackendConfig{
			LogMaxAgeDays: 30, LogMaxBackups: 10, LogMaxSizeMB: 100,
			WebhookBuffer: 10000, WebhookBatchWait: 5 * time.Second,
			WebhookInitialBackoff: time.Second, WebhookShutdownTimeout: 20 * time.Second,
		},
		FailurePolicy:           string(sessionaudit.FailClosed),
		Commands:                true,
		RecordingFailurePolicy:  string(sessionaudit.FailOpen),
		RecordingUploadInterval: 5 * time.Second,
	}
}

func (o *AuditOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.LogPath, "session-audit-log-path", o.LogPath,
		"File the session audit records (audit.k8s.io/v1 Events, one JSON per line) are appended to; - for standard output.")
	fs.IntVar(&o.LogMaxAgeDays, "session-audit-log-maxage", o.LogMaxAgeDays, "Days to keep rotated session audit logs (0: no limit).")
	fs.IntVar(&o.LogMaxBackups, "session-audit-log-maxbackup", o.LogMaxBackups, "Rotated session audit logs to keep (0: no limit).")
	fs.IntVar(&o.LogMaxSizeMB, "session-audit-log-maxsize", o.LogMaxSizeMB, "Megabytes a session audit log grows to before it is rotated.")
	fs.StringVar(&o.WebhookConfigFile, "session-audit-webhook-config-file", o.WebhookConfigFile,
		"Kubeconfig of a webhook that receives session audit records in batches (audit.k8s.io/v1 EventList).")
	fs.IntVar(&o.WebhookBuffer, "session-audit-webhook-buffer", o.WebhookBuffer,
		"Records held for the webhook while it cannot take them; past this, a record is lost and fail-closed refuses the session.")
	fs.DurationVar(&o.WebhookInitialBackoff, "session-audit-webhook-initial-backoff", o.WebhookInitialBackoff,
		"Wait before a batch the webhook did not take is sent again; it doubles up to 30s, and batches are retried until delivered.")
	fs.DurationVar(&o.WebhookShutdownTimeout, "session-audit-webhook-shutdown-timeout", o.WebhookShutdownTimeout,
		"How long shutdown waits for the webhook to take the records it holds; what is left then is lost (logged and counted).")
	fs.DurationVar(&o.WebhookBatchWait, "session-audit-webhook-batch-max-wait", o.WebhookBatchWait, "Longest a record waits for its batch to the webhook.")
	fs.StringVar(&o.Recording.Dir, "recording-dir", o.Recording.Dir,
		"Directory for asciicast v2 recordings of TTY sessions, one <session id>.cast each (empty: no recordings).")
	fs.BoolVar(&o.Recording.NonTTY, "record-non-tty", o.Recording.NonTTY, "Record exec and attach sessions without a TTY too.")
	fs.BoolVar(&o.Recording.Stdin, "record-stdin", o.Recording.Stdin, "Record what users type (asciicast \"i\" events), not only output.")
	fs.StringVar(&o.RecordingFailurePolicy, "recording-failure-policy", o.RecordingFailurePolicy,
		"fail-open: a session runs on when its recording fails or falls behind (events dropped and counted); fail-closed: it is refused (503) when its recording cannot be made, waits for a recording that falls behind, and ends when the recording cannot be written.")
	fs.StringVar(&o.RecordingBucket, "recording-bucket", o.RecordingBucket,
		"Object storage that keeps the recordings, as a gocloud.dev/blob URL: s3://BUCKET?region=R (and endpoint=URL&use_path_style=true for "+
			"S3-compatible servers), or file:///DIR; prefix=P puts P before every key. Credentials come from the driver's environment "+
			"(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...). --recording-dir is then the spool: a running session's recording is "+
			"uploaded in parts, the whole recording when it ends (docs/recordings.md).")
	fs.DurationVar(&o.RecordingUploadInterval, "recording-upload-interval", o.RecordingUploadInterval,
		"Longest a running session's recording waits to be uploaded to --recording-bucket: what a replica's loss loses of it, with the upload's own time.")
	fs.DurationVar(&o.Recording.Retention, "recording-retention", o.Recording.Retention,
		"Remove recordings from --recording-bucket once older than this (0: keep them), and a session's parts once its newest is; "+
			"only exec-proxy's keys. Must be longer than --max-session-duration. Every replica sweeps.")
	fs.BoolVar(&o.Commands, "session-audit-commands", o.Commands,
		"Write a record of each command line typed in a TTY session (exec or attach -it), read off its terminal, and mark it in the session's recording.")
	fs.StringVar(&o.FailurePolicy, "session-audit-failure-policy", o.FailurePolicy,
		"fail-closed: refuse a session (503) whose start record cannot be written; fail-open: let it run, count and log the loss.")
}

func (o *AuditOptions) Validate() []error {
	var errs []error
	switch sessionaudit.FailurePolicy(o.FailurePolicy) {
	case sessionaudit.FailClosed, sessionaudit.FailOpen:
	default:
		errs = append(errs, fmt.Errorf("--session-audit-failure-policy must be fail-closed or fail-open, not %q", o.FailurePolicy))
	}
	switch sessionaudit.FailurePolicy(o.RecordingFailurePolicy) {
	case sessionaudit.FailClosed, sessionaudit.FailOpen:
	default:
		errs = append(errs, fmt.Errorf("--recording-failure-policy must be fail-closed or fail-open, not %q", o.RecordingFailurePolicy))
	}
	if o.Recording.Dir != "" {
		if info, err := os.Stat(o.Recording.Dir); err != nil || !info.IsDir() {
			errs = append(errs, fmt.Errorf("--recording-dir %q must be an existing directory", o.Recording.Dir))
		}
	}
	if o.RecordingBucket != "" && o.Recording.Dir == "" {
		errs = append(errs, fmt.Errorf("--recording-bucket needs --recording-dir, its spool"))
	}
	if o.RecordingBucket == "" && o.Recording.Retention != 0 {
		errs = append(errs, fmt.Errorf("--recording-retention needs --recording-bucket"))
	}
	if o.RecordingUploadInterval <= 0 || o.Recording.Retention < 0 {
		errs = append(errs, fmt.Errorf("--recording-upload-interval must be positive and --recording-retention not negative"))
	}
	if o.LogMaxAgeDays < 0 || o.LogMaxBackups < 0 || o.LogMaxSizeMB < 0 || o.WebhookBuffer < 1 {
		errs = append(errs, fmt.Errorf("--session-audit-log-max* must not be negative and --session-audit-webhook-buffer must be at least 1"))
	}
	if o.WebhookInitialBackoff <= 0 || o.WebhookShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("--session-audit-webhook-initial-backoff must be positive and --session-audit-webhook-shutdown-timeout not negative"))
	}
	return errs
}

// ValidateRetention refuses a --recording-retention that a session may outlive: retention removes
// a session's parts once its newest is that old, and a session that records nothing uploads none.
func (o *AuditOptions) ValidateRetention(maxSessionDuration time.Duration) []error {
	if o.Recording.Retention > 0 && maxSessionDuration > 0 && o.Recording.Retention <= maxSessionDuration {
		return []error{fmt.Errorf("--recording-retention (%s) must be longer than --max-session-duration (%s): "+
			"retention would remove a running session's uploaded parts", o.Recording.Retention, maxSessionDuration)}
	}
	return nil
}

// Auditor builds the audit record writer; nil when no destination is configured.
func (o *AuditOptions) Auditor() (*sessionaudit.Auditor, error) {
	backend, err := sessionaudit.NewBackend(o.BackendConfig)
	if err != nil || backend == nil {
		return nil, err
	}
	a := sessionaudit.NewAuditor(backend, sessionaudit.FailurePolicy(o.FailurePolicy))
	a.Commands = o.Commands
	return a, nil
}

// bucketCheckTimeout bounds the start's check that the recording bucket can be reached.
const bucketCheckTimeout = 30 * time.Second

// RecordingConfig is the recording flags, with the bucket opened and checked: a bucket that
// cannot be reached (such as with wrong credentials) fails the start rather than every recording.
func (o *AuditOptions) RecordingConfig(ctx context.Context) (recording.Config, error) {
	cfg := o.Recording
	cfg.FailClosed = o.RecordingFailurePolicy == string(sessionaudit.FailClosed)
	if o.RecordingBucket == "" {
		return cfg, nil
	}
	b, err := recording.OpenBucket(ctx, o.RecordingBucket, o.RecordingUploadInterval, clock.RealClock{})
	if err != nil {
		return cfg, fmt.Errorf("--recording-bucket: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, bucketCheckTimeout)
	defer cancel()
	if err := b.Check(ctx); err != nil {
		b.Close()
		return cfg, fmt.Errorf("--recording-bucket: %w", err)
	}
	klog.FromContext(ctx).Info("Recordings are kept in a bucket", "bucket", b.String(), "uploadInterval", o.RecordingUploadInterval, "retention", cfg.Retention)
	cfg.Bucket = b
	return cfg, nil
}
