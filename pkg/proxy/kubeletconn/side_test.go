package kubeletconn

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/exec-proxy/exec-proxy/internal/poll"
	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/internal/leaktest"
	"github.com/exec-proxy/exec-proxy/pkg/wire/wiretest"
)

// tlsKubelet is a kubelet's TLS listener that counts its open connections, and a transport that
// trusts it.
func tlsKubelet(t *testing.T) (address string, open *atomic.Int64, tr *nodeconn.Transport) {
	t.Helper()
	open = &atomic.Int64{}
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tr, err := nodeconn.NewTransport(nodeconn.TransportConfig{CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	return srv.Listener.Addr().String(), open, tr
}

// The upgrade-aware proxy's dialer hands over the session's verified connection, once and for its
// kubelet only; it never dials itself.
func TestUpgradeDialerOnlyHandsOver(t *testing.T) {
	leaktest.Check(t)
	address, open, tr := tlsKubelet(t)
	b := NewSide("n1", address, nil)
	ctx := WithSide(context.Background(), b)
	dial := UpgradeTransport().DialContext
	if _, err := dial(ctx, "tcp", address); err == nil || !strings.Contains(err.Error(), "no verified connection") {
		t.Fatalf("before the dial: %v, want no verified connection", err)
	}
	if _, err := dial(context.Background(), "tcp", address); err == nil {
		t.Fatal("without a session, the dialer handed a connection")
	}
	if err := b.Dial(ctx, tr, false, true); err != nil {
		t.Fatal(err)
	}
	if b.lingering == nil {
		t.Error("the side holds no lingeringConn to arm under the upgrade-aware proxy")
	}
	if _, err := dial(ctx, "tcp", "127.0.0.2:1"); err == nil {
		t.Error("the connection was handed for another kubelet")
	}
	conn, err := dial(ctx, "tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(ctx, "tcp", address); err == nil {
		t.Error("the connection was handed twice")
	}
	_ = conn.Close()
	poll.Until(t, func() bool { return open.Load() == 0 })
}

// A session refused before its upgrade closes the connection nobody took.
func TestUntakenConnIsClosed(t *testing.T) {
	leaktest.Check(t)
	address, open, tr := tlsKubelet(t)
	b := NewSide("n1", address, nil)
	if err := b.Dial(context.Background(), tr, false, false); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, func() bool { return open.Load() == 1 })
	b.Close() // as the session's end does for a session refused before its upgrade
	poll.Until(t, func() bool { return open.Load() == 0 })
}

func TestSetupConnGoesDirectOnceUpgraded(t *testing.T) {
	b := &Side{}
	conn := &stackConn{}
	c := &setupConn{Conn: conn, b: b}
	buf := make([]byte, 1)
	_, _ = c.Write(buf)
	_, _ = c.Read(buf)
	b.upgraded.Store(true)
	_, _ = c.Write(buf)
	_, _ = c.Read(buf)
	want := []bool{true, true, false, false}
	if !reflect.DeepEqual(conn.fresh, want) {
		t.Errorf("on a fresh stack: %v, want %v (before the upgrade only)", conn.fresh, want)
	}
}

// stackConn notes whether each Read and Write ran under stack.Fresh.
type stackConn struct {
	net.Conn
	fresh []bool
}

func (c *stackConn) note() {
	buf := make([]byte, 8<<10)
	c.fresh = append(c.fresh, strings.Contains(string(buf[:runtime.Stack(buf, false)]), "stack.Fresh"))
}

func (c *stackConn) Read(p []byte) (int, error)  { c.note(); return len(p), nil }
func (c *stackConn) Write(p []byte) (int, error) { c.note(); return len(p), nil }

// TestSetupConnReadsWhatArrivedOnceUpgraded: the kubelet's frame headers come as records of their
// own; once upgraded, a read takes what has arrived with them, without waiting for more.
func TestSetupConnReadsWhatArrivedOnceUpgraded(t *testing.T) {
	server, kubelet := wiretest.TLSPair(t)
	b := &Side{}
	b.upgraded.Store(true)
	c := &setupConn{Conn: server, b: b}
	for _, r := range []string{"abcd", "efgh", "data"} {
		if _, err := kubelet.TLS.Write([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	kubelet.Flush(t)
	p := make([]byte, 1024)
	_ = server.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(p); err != nil || string(p[:n]) != "abcdefghdata" {
		t.Fatalf("read %q, %v; want the three records at once", p[:n], err)
	}
}

// TestSetupConnHoldsHeaderForBody: relayed alone, a SPDY frame's header would be a TLS record and
// a system call of its own at every hop; a read that found only a header reads on for its body.
func TestSetupConnHoldsHeaderForBody(t *testing.T) {
	header := func(length int) string {
		return string([]byte{0, 0, 0, 1, 0, byte(length >> 16), byte(length >> 8), byte(length)})
	}
	cases := []struct {
		name   string
		spdy   bool // the kubelet answered the upgrade with SPDY
		chunks []string
		end    error // after the chunks
		bufLen int
		want   string
		err    error
	}{
		{"a header in two pieces waits for its body", true, []string{header(4)[:4], header(4)[4:], "body", "next"}, nil, 64, header(4) + "body", nil},
		{"a frame without a body is not held", true, []string{header(0), "next"}, nil, 64, header(0), nil},
		{"a whole frame is returned as it came", true, []string{header(4) + "body", "next"}, nil, 64, header(4) + "body", nil},
		{"the end of a body with the next header is returned as it came", true, []string{header(6) + "bo", "dy", "ne" + header(4), "next"}, nil, 64, header(6) + "bo", nil},
		{"a header cut off by the end of the connection is returned with the end", true, []string{header(4)[:5]}, io.EOF, 64, header(4)[:5], io.EOF},
		{"a full buffer is returned", true, []string{header(4), "body"}, nil, 8, header(4), nil},
		{"not SPDY: nothing is held", false, []string{header(4), "body"}, nil, 64, header(4), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &Side{}
			b.upgraded.Store(true)
			b.spdy.Store(tc.spdy)
			c := &setupConn{Conn: &chunkConn{chunks: tc.chunks, end: tc.end}, b: b}
			p := make([]byte, tc.bufLen)
			n, err := c.Read(p)
			if string(p[:n]) != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("read %q, %v; want %q, %v", p[:n], err, tc.want, tc.err)
			}
		})
	}
}

// chunkConn returns its chunks one read at a time, then end (io.EOF by default); its deadlines
// cannot be set, so wire.ReadMore takes nothing more.
type chunkConn struct {
	net.Conn
	chunks []string
	end    error
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		if c.end == nil {
			return 0, io.EOF
		}
		return 0, c.end
	}
	n := copy(p, c.chunks[0])
	if c.chunks[0] = c.chunks[0][n:]; c.chunks[0] == "" {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

func (c *chunkConn) SetReadDeadline(time.Time) error { return errors.New("no deadlines") }

// TestSetupConnHoldsBackOnlySPDY: the holdback follows SPDY frames, so a throttled WebSocket passed
// through to the kubelet is written as it is (read as SPDY, a masked frame could pass for PINGs and
// a keystroke be held while output flows).
func TestSetupConnHoldsBackOnlySPDY(t *testing.T) {
	for _, spdy := range []bool{true, false} {
		b := &Side{}
		b.upgraded.Store(true)
		b.spdy.Store(spdy)
		out := &countingWriter{}
		c := &setupConn{Conn: &stackConn{}, b: b, out: out}
		_, _ = c.Write([]byte{0x82, 0x86, 0, 6, 0, 0, 'x'})
		if got := out.writes > 0; got != spdy {
			t.Errorf("kubelet speaks SPDY %v: written through the holdback %v", spdy, got)
		}
	}
}

type countingWriter struct{ writes int }

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return len(p), nil }
