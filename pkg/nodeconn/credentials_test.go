package nodeconn

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
)

func writeToken(t *testing.T, token string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// The upgrade-aware proxy's UpgradeTransport adds the token to a copy of the request it dials
// with, never to the request it logs, and still dials with the given transport's dialer: without
// it, the upgrade-aware proxy would dial the kubelet itself, in the clear.
func TestUpgradeTransport(t *testing.T) {
	caFile, _ := writeCert(t, t.TempDir(), "ca")
	certFile, keyFile := writeCert(t, t.TempDir(), "client")
	cases := []struct {
		name string
		cfg  TransportConfig
		want string // the Authorization header of the request dialed
	}{
		{"token", TransportConfig{CAFile: caFile, TokenFile: writeToken(t, "s3cret\n")}, "Bearer s3cret"},
		{"client certificate", TransportConfig{CAFile: caFile, ClientCertFile: certFile, ClientKeyFile: keyFile}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewTransport(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			dialed := false
			connection := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
				dialed = true
				return nil, errors.New("not dialing in this test")
			}}
			ut := tr.UpgradeTransport(connection)
			req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:10250/exec/ns/p/c", nil)
			req.Header.Set("Upgrade", "SPDY/3.1")
			wrapped, err := ut.WrapRequest(req)
			if err != nil {
				t.Fatal(err)
			}
			if got := wrapped.Header.Get("Authorization"); got != tc.want {
				t.Errorf("the request dialed has Authorization %q, want %q", got, tc.want)
			}
			if got := req.Header.Get("Authorization"); got != "" {
				t.Errorf("the request the upgrade-aware proxy logs has Authorization %q", got)
			}
			dial, err := utilnet.DialerFor(ut)
			if err != nil || dial == nil {
				t.Fatalf("no dialer found under the upgrade transport: %v", err)
			}
			_, _ = dial(context.Background(), "tcp", "127.0.0.1:10250")
			if !dialed {
				t.Error("the upgrade transport does not dial with the transport it was given")
			}
		})
	}
}

// With a token, Run warns at start why (a node can replay it), naming the file, never the token;
// the metric says which credential is in use. A client certificate gets no warning.
func TestCredentialWarning(t *testing.T) {
	caFile, _ := writeCert(t, t.TempDir(), "ca")
	certFile, keyFile := writeCert(t, t.TempDir(), "client")
	tokenFile := writeToken(t, "tok-7f3e2a")
	cases := []struct {
		name     string
		cfg      TransportConfig
		warn     bool
		credType string
	}{
		{"token", TransportConfig{CAFile: caFile, TokenFile: tokenFile}, true, "token"},
		{"client certificate", TransportConfig{CAFile: caFile, ClientCertFile: certFile, ClientKeyFile: keyFile}, false, "client-certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewTransport(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(&buf)))))
			defer cancel()
			tr.Run(ctx)
			out := buf.String()
			warned := strings.Contains(out, "WARNING") && strings.Contains(out, "replay") && strings.Contains(out, tokenFile)
			if warned != tc.warn {
				t.Errorf("warned %v, want %v:\n%s", warned, tc.warn, out)
			}
			if strings.Contains(out, "tok-7f3e2a") {
				t.Errorf("the token is in the log:\n%s", out)
			}
			want := `
# HELP execproxy_kubelet_credential [ALPHA] 1 for the credential exec-proxy presents to kubelets: client-certificate, or token (a bearer token, which every kubelet it is sent to, and root on that node, can replay to any other kubelet).
# TYPE execproxy_kubelet_credential gauge
`
			for _, c := range []string{"client-certificate", "none", "token"} {
				v := "0"
				if c == tc.credType {
					v = "1"
				}
				want += `execproxy_kubelet_credential{type="` + c + `"} ` + v + "\n"
			}
			if err := testutil.GatherAndCompare(legacyregistry.DefaultGatherer, strings.NewReader(want), "execproxy_kubelet_credential"); err != nil {
				t.Error(err)
			}
		})
	}
}

// A token file that cannot be read, or is empty, fails at start instead of in a session.
func TestTokenReadAtStart(t *testing.T) {
	caFile, _ := writeCert(t, t.TempDir(), "ca")
	for name, file := range map[string]string{"missing": filepath.Join(t.TempDir(), "nope"), "empty": writeToken(t, " \n")} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewTransport(TransportConfig{CAFile: caFile, TokenFile: file}); err == nil || !strings.Contains(err.Error(), "kubelet token file") {
				t.Errorf("got %v, want a kubelet token file error", err)
			}
		})
	}
}
