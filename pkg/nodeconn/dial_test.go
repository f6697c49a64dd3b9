package nodeconn

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// tlsKubelet is a TLS server standing for a kubelet, and a CA file that verifies it.
func tlsKubelet(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	kubelet := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(kubelet.Close)
	caFile := filepath.Join(t.TempDir(), "kubelet-ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kubelet.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return kubelet, caFile
}

func TestDialKubelet(t *testing.T) {
	kubelet, caFile := tlsKubelet(t) // its certificate names 127.0.0.1
	otherCA, _ := writeCert(t, t.TempDir(), "other")
	_, port, _ := net.SplitHostPort(kubelet.Listener.Addr().String())
	cases := []struct {
		name, address string
		cfg           TransportConfig
		wantErr       string
	}{
		{"verified", "127.0.0.1:" + port, TransportConfig{CAFile: caFile}, ""},
		{"another CA", "127.0.0.1:" + port, TransportConfig{CAFile: otherCA}, "x509"},
		{"a name the certificate lacks", "localhost:" + port, TransportConfig{CAFile: caFile}, "x509"},
		{"not verified when told not to", "localhost:" + port, TransportConfig{InsecureSkipTLSVerify: true}, ""},
		{"no port", "127.0.0.1", TransportConfig{CAFile: caFile}, "kubelet address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewTransport(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			wrapped := false
			conn, err := tr.DialKubelet(context.Background(), tc.address, func(c net.Conn) net.Conn { wrapped = true; return c })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if !wrapped || !conn.ConnectionState().HandshakeComplete || conn.ConnectionState().NegotiatedProtocol == "h2" {
				t.Errorf("wrapped %v, handshake %+v", wrapped, conn.ConnectionState())
			}
		})
	}
}

func TestHostConfigsAreSharedAndBounded(t *testing.T) {
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	var h hostConfigs
	a := h.get(base, "10.0.0.1")
	if a != h.get(base, "10.0.0.1") || a.ServerName != "10.0.0.1" || base.ServerName != "" {
		t.Fatalf("one host: configs %p and %p, ServerName %q (base %q)", a, h.get(base, "10.0.0.1"), a.ServerName, base.ServerName)
	}
	if b := h.get(base, "10.0.0.2"); b == a || b.ServerName != "10.0.0.2" {
		t.Errorf("another host shares the config or its name: %q", b.ServerName)
	}
	for i := range 3 * maxHostConfigs {
		h.get(base, fmt.Sprintf("host-%d", i))
	}
	if n := len(h.configs); n > maxHostConfigs {
		t.Errorf("%d configs kept, want at most %d", n, maxHostConfigs)
	}
}

func TestKubeletSessionsResume(t *testing.T) {
	kubelet, caFile := tlsKubelet(t)
	tr, err := NewTransport(TransportConfig{CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	// dial makes a request, as a session does: TLS 1.3 tickets come with the kubelet's first answer.
	dial := func() bool {
		t.Helper()
		conn, err := tr.DialKubelet(context.Background(), kubelet.Listener.Addr().String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		req, _ := http.NewRequest(http.MethodGet, "https://kubelet/", nil)
		if err := req.Write(conn); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return conn.ConnectionState().DidResume
	}
	if got := []bool{dial(), dial()}; !reflect.DeepEqual(got, []bool{false, true}) {
		t.Fatalf("resumed %v, want a full handshake then a resumed one", got)
	}
	tr.sessions.Enqueue() // as the client certificate's files change
	if dial() {
		t.Error("a session made before the client certificate changed was resumed")
	}
}
