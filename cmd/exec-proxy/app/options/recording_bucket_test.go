package options

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2"
)

// TestRecordingBucketNotLogged: the bucket URL's query and userinfo (where secrets may be) reach
// neither exec-proxy's log, at the highest verbosity, nor its errors; the rest of the URL does.
func TestRecordingBucketNotLogged(t *testing.T) {
	var logged bytes.Buffer
	fs := flag.NewFlagSet("klog", flag.PanicOnError)
	klog.InitFlags(fs)
	_ = fs.Set("v", "10")
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	klog.SetOutput(&logged)
	defer func() { klog.SetOutput(nil); _ = fs.Set("v", "0"); _ = fs.Set("logtostderr", "true") }()
	dir, keyDir := t.TempDir(), t.TempDir()
	key := filepath.Join(keyDir, "signing.key")
	if err := os.WriteFile(key, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, url, wantErr string }{
		{"opened", "file://" + dir + "?no_tmp_dir=true&secret_key_path=" + key + "&base_url=https://u:SEKRIT@signer.example/", ""},
		{"unknown driver", "nosuch://u:SEKRIT@bucket?token=SEKRIT", "nosuch://bucket"},
		{"unknown parameter", "file://" + dir + "?token=SEKRIT", "invalid query parameter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logged.Reset()
			o := NewAuditOptions()
			o.Recording.Dir, o.RecordingBucket = dir, tc.url
			cfg, err := o.RecordingConfig(context.Background())
			klog.Flush()
			switch {
			case tc.wantErr == "" && (err != nil || cfg.Bucket == nil):
				t.Fatalf("RecordingConfig: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("RecordingConfig: %v, want %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "SEKRIT") {
				t.Errorf("the error holds the secret: %v", err)
			}
			if strings.Contains(logged.String(), "SEKRIT") {
				t.Errorf("the log holds the secret:\n%s", logged.String())
			}
			if tc.wantErr == "" && !strings.Contains(logged.String(), "file://"+dir) {
				t.Errorf("the log does not name the bucket:\n%s", logged.String())
			}
		})
	}
}

// TestRecordingRetentionAboveMaxSessionDuration: a retention a session may outlive is refused,
// with both flags named; either one unset (0) leaves nothing to compare.
func TestRecordingRetentionAboveMaxSessionDuration(t *testing.T) {
	cases := []struct {
		name                   string
		retention, maxDuration time.Duration
		refused                bool
	}{
		{"retention below", time.Hour, 2 * time.Hour, true},
		{"retention equal", time.Hour, time.Hour, true},
		{"retention above", 25 * time.Hour, 24 * time.Hour, false},
		{"no retention", 0, time.Hour, false},
		{"no max duration", time.Hour, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := NewAuditOptions()
			o.Recording.Retention = tc.retention
			errs := o.ValidateRetention(tc.maxDuration)
			if refused := len(errs) > 0; refused != tc.refused {
				t.Fatalf("errors %v, want refused %v", errs, tc.refused)
			}
			if tc.refused && (!strings.Contains(errs[0].Error(), "--recording-retention") || !strings.Contains(errs[0].Error(), "--max-session-duration")) {
				t.Errorf("error %q names not both flags", errs[0])
			}
		})
	}
}
