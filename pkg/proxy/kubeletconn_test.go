package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
	"github.com/exec-proxy/exec-proxy/pkg/wire/wiretest"
)

func TestKubeletIsSentOnlyItsHeaders(t *testing.T) {
	checkLeaks(t)
	kubelet := newFakeKubelet(t)
	p := newTestProxier(t, kubelet.caFile, Limits{}, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t)))
	srv := front(t, p)
	// The client's own headers (the front proxy's X-Remote-User, say): X-Test-User names the user.
	for _, protocol := range []string{"spdy", "websocket"} {
		t.Run(protocol, func(t *testing.T) {
			if out, err := execVia(t, srv, protocol, "alice", execCase{command: []string{"echo", "hi"}}); err != nil || out != "hi\n" {
				t.Fatalf("exec: %q %v", out, err)
			}
			h := *kubelet.header.Load()
			if v := h.Get("X-Test-User"); v != "" {
				t.Errorf("the kubelet was sent the client's X-Test-User: %q", v)
			}
			if h.Get("Upgrade") == "" || len(h.Values("X-Stream-Protocol-Version")) == 0 {
				t.Errorf("the kubelet lacks the upgrade's headers: %v", h)
			}
		})
	}
	eventuallyTrue(t, func() bool { return len(p.Sessions()) == 0 })
}

func TestKubeletDialerOnlyHandsOver(t *testing.T) {
	checkLeaks(t)
	kubelet := newFakeKubelet(t)
	p := &Proxier{transport: kubeletTransport(t, kubelet)}
	address := kubelet.Listener.Addr().String()
	s := &Session{Address: address}
	ctx := withSession(context.Background(), s)
	if _, err := kubeletDialer(ctx, "tcp", address); err == nil || !strings.Contains(err.Error(), "no verified connection") {
		t.Fatalf("before the dial: %v, want no verified connection", err)
	}
	if _, err := kubeletDialer(context.Background(), "tcp", address); err == nil {
		t.Fatal("without a session, the dialer handed a connection")
	}
	if err := p.dialKubelet(ctx, s, true); err != nil {
		t.Fatal(err)
	}
	if s.backend == nil {
		t.Error("the session holds no backend to arm under the upgrade-aware proxy")
	}
	if _, err := kubeletDialer(ctx, "tcp", "127.0.0.2:1"); err == nil {
		t.Error("the connection was handed for another kubelet")
	}
	conn, err := kubeletDialer(ctx, "tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kubeletDialer(ctx, "tcp", address); err == nil {
		t.Error("the connection was handed twice")
	}
	_ = conn.Close()
	eventuallyTrue(t, func() bool { return kubelet.open.Load() == 0 })
}

func kubeletTransport(t *testing.T, kubelet *fakeKubelet) *nodeconn.Transport {
	t.Helper()
	tr, err := nodeconn.NewTransport(nodeconn.TransportConfig{CAFile: kubelet.caFile})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestUntakenKubeletConnIsClosed(t *testing.T) {
	checkLeaks(t)
	kubelet := newFakeKubelet(t)
	p := &Proxier{transport: kubeletTransport(t, kubelet)}
	s := &Session{Address: kubelet.Listener.Addr().String()}
	if err := p.dialKubelet(context.Background(), s, false); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, func() bool { return kubelet.open.Load() == 1 })
	s.closeKubelet() // as afterSession does for a session refused before its upgrade
	eventuallyTrue(t, func() bool { return kubelet.open.Load() == 0 })
}

func TestFreshStack(t *testing.T) {
	checkLeaks(t)
	ran := false
	freshStack(func() { ran = true })
	if !ran {
		t.Fatal("f did not run")
	}
	defer func() {
		if r := recover(); r != "boom" {
			t.Errorf("recovered %v, want the panic of f", r)
		}
	}()
	freshStack(func() { panic("boom") })
	t.Error("freshStack returned after f panicked")
}

func TestSetupConnGoesDirectOnceRelaying(t *testing.T) {
	s := &Session{}
	conn := &stackConn{}
	c := &setupConn{Conn: conn, s: s}
	buf := make([]byte, 1)
	_, _ = c.Write(buf)
	_, _ = c.Read(buf)
	s.relaying.Store(true)
	_, _ = c.Write(buf)
	_, _ = c.Read(buf)
	want := []bool{true, true, false, false}
	if !reflect.DeepEqual(conn.fresh, want) {
		t.Errorf("on a fresh stack: %v, want %v (before the upgrade only)", conn.fresh, want)
	}
}

// stackConn notes whether each Read and Write ran under freshStack.
type stackConn struct {
	net.Conn
	fresh []bool
}

func (c *stackConn) note() {
	buf := make([]byte, 8<<10)
	c.fresh = append(c.fresh, strings.Contains(string(buf[:runtime.Stack(buf, false)]), "freshStack"))
}

func (c *stackConn) Read(p []byte) (int, error)  { c.note(); return len(p), nil }
func (c *stackConn) Write(p []byte) (int, error) { c.note(); return len(p), nil }

// TestSetupConnReadsWhatArrivedOnceRelaying: the kubelet's frame headers come as records of their
// own; once relaying, a read takes what has arrived with them, without waiting for more.
func TestSetupConnReadsWhatArrivedOnceRelaying(t *testing.T) {
	server, kubelet := wiretest.TLSPair(t)
	s := &Session{}
	s.relaying.Store(true)
	c := &setupConn{Conn: server, s: s}
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
			s := &Session{}
			s.relaying.Store(true)
			s.kubeletSPDY.Store(tc.spdy)
			c := &setupConn{Conn: &chunkConn{chunks: tc.chunks, end: tc.end}, s: s}
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
		s := &Session{}
		s.relaying.Store(true)
		s.kubeletSPDY.Store(spdy)
		out := &countingWriter{}
		c := &setupConn{Conn: &stackConn{}, s: s, out: out}
		_, _ = c.Write([]byte{0x82, 0x86, 0, 6, 0, 0, 'x'})
		if got := out.writes > 0; got != spdy {
			t.Errorf("kubelet speaks SPDY %v: written through the holdback %v", spdy, got)
		}
	}
}

type countingWriter struct{ writes int }

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return len(p), nil }
