package setup

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	httpstreamspdy "k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
)

// forwarder is a kubelet's portForward endpoint in miniature: it upgrades to SPDY and serves each
// data stream as answer says.
type forwarder struct {
	answer string // "http": an HTTP status line; "refused": the error stream's message; "silent": nothing
}

func (f forwarder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if _, err := httpstream.Handshake(req, w, []string{portforward.PortForwardProtocolV1Name}); err != nil {
		return
	}
	streams := make(chan httpstream.Stream, 4)
	conn := httpstreamspdy.NewResponseUpgrader().UpgradeResponse(w, req, func(s httpstream.Stream, _ <-chan struct{}) error {
		streams <- s
		return nil
	})
	if conn == nil {
		return
	}
	defer conn.Close()
	var errStream httpstream.Stream
	for {
		select {
		case <-conn.CloseChan():
			return
		case s := <-streams:
			if s.Headers().Get(corev1.StreamType) == corev1.StreamTypeError {
				errStream = s
				continue
			}
			buf := make([]byte, len(request))
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			switch f.answer {
			case "http":
				_, _ = io.WriteString(s, "HTTP/1.0 200 OK\r\n\r\n")
			case "refused":
				_, _ = io.WriteString(errStream, "dial tcp4 127.0.0.1:8080: connect: connection refused")
				errStream.Close()
				s.Close()
			}
		}
	}
}

func fakePath(t *testing.T, srv *httptest.Server) Path {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return Path{Name: "fake", Cfg: &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}, URL: srv.URL + "/portForward/demo/demo"}
}

// noLeak checks that every goroutine a test started has ended. spdystream's shutdown offers a
// close error to a CloseWait caller for a second before it ends, so the check waits longer than
// goleak's default.
func noLeak(t *testing.T) func() {
	ignore := goleak.IgnoreCurrent()
	return func() {
		t.Helper()
		var err error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if err = goleak.Find(ignore); err == nil {
				return
			}
		}
		t.Error(err)
	}
}

func TestOpen(t *testing.T) {
	defer noLeak(t)()
	for _, c := range []struct {
		name    string
		answer  string
		timeout time.Duration
		wantErr string // "" for success
	}{
		{"answered", "http", 10 * time.Second, ""},
		{"port refused: the error stream's message", "refused", 10 * time.Second, "connection refused"},
		{"no answer: the deadline ends it", "silent", 300 * time.Millisecond, "error stream"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(forwarder{answer: c.answer})
			defer srv.Close()
			d, err := open(context.Background(), fakePath(t, srv), c.timeout)
			switch {
			case c.wantErr == "" && (err != nil || d <= 0):
				t.Fatalf("open = %v, %v; want a duration", d, err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("open = %v, %v; want an error with %q", d, err, c.wantErr)
			}
		})
	}
}

// TestOpenUpgradeRefused: a server that answers the upgrade with an error is reported.
func TestOpenUpgradeRefused(t *testing.T) {
	defer noLeak(t)()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "pods \"demo\" is forbidden", http.StatusForbidden)
	}))
	defer srv.Close()
	if _, err := open(context.Background(), fakePath(t, srv), 10*time.Second); err == nil || !strings.Contains(err.Error(), "upgrade") {
		t.Fatalf("open = %v; want the upgrade's error", err)
	}
}
