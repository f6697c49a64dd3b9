package nodeconn

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exec-proxy/exec-proxy/internal/testcert"
)

// writeCert writes a self-signed certificate named cn and its key to dir; returns the files.
func writeCert(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM := testcert.SelfSigned(t, cn)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	// Write to temporary names and rename, as rotations do: no half-written pair.
	for f, data := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(f+".tmp", data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{keyFile, certFile} {
		if err := os.Rename(f+".tmp", f); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

func TestNewTransportConfig(t *testing.T) {
	dir := t.TempDir()
	caFile, _ := writeCert(t, dir, "ca")
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		cfg     TransportConfig
		wantErr string
	}{
		{"CA verifies", TransportConfig{CAFile: caFile}, ""},
		{"no CA is refused", TransportConfig{}, "a kubelet certificate authority is required"},
		{"explicit insecure", TransportConfig{InsecureSkipTLSVerify: true}, ""},
		{"missing CA file", TransportConfig{CAFile: filepath.Join(dir, "nope")}, "reading kubelet certificate authority"},
		{"CA file without PEM", TransportConfig{CAFile: empty}, "no PEM certificate found"},
		{"missing client cert", TransportConfig{CAFile: caFile, ClientCertFile: filepath.Join(dir, "nope"), ClientKeyFile: filepath.Join(dir, "nope")}, "loading kubelet client certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewTransport(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tr.Insecure != tc.cfg.InsecureSkipTLSVerify || tr.TLSClientConfig.InsecureSkipVerify != tc.cfg.InsecureSkipTLSVerify {
				t.Errorf("insecure: %v / %v", tr.Insecure, tr.TLSClientConfig.InsecureSkipVerify)
			}
			if !tc.cfg.InsecureSkipTLSVerify && tr.TLSClientConfig.RootCAs == nil {
				t.Error("no root CAs: the system pool would be trusted for kubelets")
			}
		})
	}
}

func TestClientCertificateRotation(t *testing.T) {
	dir := t.TempDir()
	caFile, _ := writeCert(t, t.TempDir(), "ca")
	certFile, keyFile := writeCert(t, dir, "first")
	tr, err := NewTransport(TransportConfig{CAFile: caFile, ClientCertFile: certFile, ClientKeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr.Run(ctx)
	subject := func() string {
		c, err := tr.TLSClientConfig.GetClientCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	if got := subject(); got != "first" {
		t.Fatalf("got %q, want first", got)
	}
	writeCert(t, dir, "second")
	deadline := time.Now().Add(20 * time.Second)
	for subject() != "second" {
		if time.Now().After(deadline) {
			t.Fatal("rotated certificate not picked up")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
