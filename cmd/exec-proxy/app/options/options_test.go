package options

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	valid := func(o *Options) {
		o.Kubelet.CertificateAuthority = "/ca.crt"
		o.Kubelet.ClientCertificate, o.Kubelet.ClientKey = "/c.crt", "/c.key"
	}
	cases := []struct {
		name   string
		mutate func(*Options)
		want   []string // every message expected; none means valid
	}{
		{"defaults with kubelet credentials", func(o *Options) {}, nil},
		{"no kubelet CA", func(o *Options) { o.Kubelet.CertificateAuthority = "" }, []string{"--kubelet-certificate-authority is required"}},
		{"insecure instead of a CA", func(o *Options) { o.Kubelet.CertificateAuthority = ""; o.Kubelet.InsecureSkipTLSVerify = true }, nil},
		{"CA and insecure", func(o *Options) { o.Kubelet.InsecureSkipTLSVerify = true }, []string{"exclude each other"}},
		{"no kubelet credential", func(o *Options) { o.Kubelet.ClientCertificate, o.Kubelet.ClientKey = "", "" }, []string{"kubelets need exec-proxy's credential"}},
		{"token instead of a certificate", func(o *Options) {
			o.Kubelet.ClientCertificate, o.Kubelet.ClientKey, o.Kubelet.TokenFile = "", "", "/token"
		}, nil},
		{"certificate and token", func(o *Options) { o.Kubelet.TokenFile = "/token" }, []string{"exclude each other"}},
		{"certificate without key", func(o *Options) { o.Kubelet.ClientKey = "" }, []string{"go together"}},
		{"bad address type", func(o *Options) { o.Kubelet.PreferredAddressTypes = []string{"InternalIP", "Public"} }, []string{`unknown type "Public"`}},
		{"bad port", func(o *Options) { o.Kubelet.Port = 70000 }, []string{"--kubelet-port must be from 1 to 65535"}},
		{"negative limit", func(o *Options) { o.Limits.Limits.MaxSessions = -1 }, []string{"must not be negative"}},
		{"qps without burst", func(o *Options) { o.Limits.Limits.SessionStartBurst = 0 }, []string{"--session-start-burst must be at least 1"}},
		{"negative grace period", func(o *Options) { o.ShutdownGracePeriod = -1 }, []string{"--shutdown-grace-period must not be negative"}},
		{"bad recording failure policy", func(o *Options) { o.Audit.RecordingFailurePolicy = "drop" }, []string{"--recording-failure-policy must be"}},
		{"recording policy without a recording dir", func(o *Options) { o.Policy.RecordingFile = "/nonexistent.yaml" },
			[]string{"--recording-policy-file needs --recording-dir", "no such file"}},
		{"both policy files", func(o *Options) { o.Policy.RecordingFile, o.Policy.File = "/dev/null", "/dev/null" },
			[]string{"not both"}},
		{"session policy that does not parse", func(o *Options) { o.Policy.File = "/dev/null" },
			[]string{"session policy /dev/null: apiVersion and kind must be"}},
		{"retention a session outlives", func(o *Options) { o.Audit.Recording.Retention, o.Limits.MaxSessionDuration = time.Hour, 2*time.Hour },
			[]string{"--recording-retention (1h0m0s) must be longer than --max-session-duration (2h0m0s)"}},
		{"webhook backoff zero", func(o *Options) { o.Audit.WebhookInitialBackoff = 0 }, []string{"--session-audit-webhook-initial-backoff must be positive"}},
		{"peers", func(o *Options) {
			o.Peers.Namespace, o.Peers.AdvertiseAddress, o.Peers.CertificateAuthority = "execproxy-system", "10.0.0.1", "/dev/null"
		}, nil},
		{"peer namespace alone", func(o *Options) { o.Peers.Namespace = "ns" },
			[]string{"--peer-advertise-address is required", "--peer-certificate-authority is required"}},
		{"peer CA missing", func(o *Options) {
			o.Peers.Namespace, o.Peers.AdvertiseAddress, o.Peers.CertificateAuthority = "ns", "10.0.0.1", "/nonexistent/ca.crt"
		}, []string{"--peer-certificate-authority: stat /nonexistent/ca.crt"}},
		{"peers failing open", func(o *Options) { o.Peers.CountsFailurePolicy = "fail-open" }, nil},
		{"bad peer counts failure policy", func(o *Options) { o.Peers.CountsFailurePolicy = "closed" },
			[]string{`--peer-counts-failure-policy must be fail-closed or fail-open, not "closed"`}},
		{"no replica name", func(o *Options) { o.Peers.ReplicaName = "" }, []string{"--replica-name must not be empty"}},
		{"all errors at once", func(o *Options) { o.Kubelet.CertificateAuthority = ""; o.Kubelet.Port = 0 },
			[]string{"--kubelet-certificate-authority is required", "--kubelet-port"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			valid(o)
			tc.mutate(o)
			err := o.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %v", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v does not say %q", err, w)
				}
			}
		})
	}
}
