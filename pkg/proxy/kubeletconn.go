package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"

	"github.com/exec-proxy/exec-proxy/pkg/holdback"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/wire"
	wirespdy "github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
	"github.com/exec-proxy/exec-proxy/pkg/wire/tlsrecord"
)

// A session's connection to its kubelet is dialed, and the kubelet's certificate verified, on the
// request's goroutine before the session's own goroutine starts (prepare). The TLS handshake runs
// deep, and the session's goroutine then waits in the upgrade-aware proxy for the session's whole
// life: grown by the handshake, its stack would stay at 8 KiB (the runtime shrinks a stack only
// when its frames leave three quarters of it free). The upgrade-aware proxy and the translator's
// relay are handed that connection: the proxy through the dialer of its transport, so the URL it is
// given is http, the TLS being under it, as the relay's is.

// dialKubelet connects s to its kubelet. The TLS runs over a tlsrecord.Conn (see there); under the
// upgrade-aware proxy, over a drainingConn too (see there), which the session holds as its backend.
// A bandwidth-limited session's reads from the kubelet tell whether they caught up with it, under
// the TLS too (see package holdback).
func (p *Proxier) dialKubelet(ctx context.Context, s *Session, upgradeProxy bool) error {
	var reading *holdback.Reading
	if s.outLimit != nil {
		reading = holdback.NewReading()
	}
	wrap := func(c net.Conn) net.Conn {
		if reading != nil {
			c = holdback.NewConn(c, reading)
		}
		if upgradeProxy {
			dc := newDrainingConn(c)
			s.setBackend(dc)
			c = dc
		}
		return &tlsrecord.Conn{Conn: c}
	}
	conn, err := p.transport.DialKubelet(ctx, s.Address, wrap)
	if err != nil {
		return err
	}
	kubeletHandshakes.WithLabelValues(strconv.FormatBool(conn.ConnectionState().DidResume)).Inc()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kubelet, s.kubeletReading = conn, reading
	return nil
}

// kubeletWriter writes the client's (or the translator's) frames to the kubelet's connection
// conn: through a holdback.Writer in a bandwidth-limited session.
func (s *Session) kubeletWriter(conn net.Conn) io.Writer {
	s.mu.Lock()
	reading := s.kubeletReading
	s.mu.Unlock()
	if reading == nil {
		return tlsrecord.Writer{Conn: conn}
	}
	return holdback.NewWriter(tlsrecord.Writer{Conn: conn}, reading)
}

// takeKubelet hands over s's kubelet connection, once, for the kubelet at address.
func (s *Session) takeKubelet(address string) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conn := s.kubelet
	switch {
	case conn == nil:
		return nil, fmt.Errorf("error dialing backend: exec-proxy holds no verified connection to the kubelet at %s for this session", address)
	case address != s.Address:
		return nil, fmt.Errorf("error dialing backend: the session's kubelet is %s, not %s", s.Address, address)
	}
	s.kubelet = nil
	return conn, nil
}

// sessionKubelet is s's verified kubelet connection for the upgrade-aware proxy and the relay;
// without a session there is none: neither of them dials.
func sessionKubelet(s *Session, address string) (net.Conn, error) {
	if s == nil {
		return nil, errors.New("error dialing backend: not a session's request")
	}
	return s.takeKubelet(address)
}

// closeKubelet closes s's kubelet connection if nothing took it (the session was refused first).
func (s *Session) closeKubelet() {
	s.mu.Lock()
	conn := s.kubelet
	s.kubelet = nil
	s.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

// kubeletDialer is the upgrade-aware proxy's dialer. It never dials: without its session's
// verified connection, it fails rather than reach a kubelet unverified or in the clear.
func kubeletDialer(ctx context.Context, _, address string) (net.Conn, error) {
	s, _ := ctx.Value(sessionKey{}).(*Session)
	conn, err := sessionKubelet(s, address)
	if err != nil {
		return nil, err
	}
	return &setupConn{Conn: conn, s: s, out: s.kubeletWriter(conn)}, nil
}

func upgradeTransport() *http.Transport { return &http.Transport{DialContext: kubeletDialer} }

// tlsUnderneath is loc as the upgrade-aware proxy and the translator are given it: http, since the
// connection they are handed is TLS already.
func tlsUnderneath(loc *url.URL) *url.URL {
	plain := *loc
	plain.Scheme = "http"
	return &plain
}

// kubeletHeaderNames are the request headers the kubelet is sent: what an upgrade needs, who
// the client is (User-Agent) and where it came from. The rest (who the user is, from the front
// proxy; the client's own headers) is not the kubelet's, and the upgrade-aware proxy would hold it
// for the session's life.
var kubeletHeaderNames = []string{"Connection", "Upgrade", "X-Stream-Protocol-Version",
	"Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions",
	"Origin", "User-Agent", "X-Forwarded-For"}

// kubeletHeader is what of h is sent to the kubelet (see kubeletHeaderNames).
func kubeletHeader(h http.Header) http.Header {
	n := 0
	for _, name := range kubeletHeaderNames {
		if len(h[name]) > 0 {
			n++
		}
	}
	out := make(http.Header, n) // held for the session's life: no room to spare
	for _, name := range kubeletHeaderNames {
		if v := h[name]; len(v) > 0 {
			out[name] = v
		}
	}
	return out
}

// viaUpgradeProxy tells whether the upgrade-aware proxy carries req (see upstreamHandler), or the
// stream translator, through the relay.
func viaUpgradeProxy(req *http.Request, kind session.Kind) bool {
	return kind == session.KindPortForward || !wsstream.IsWebSocketRequestWithStreamCloseProtocol(req)
}

// setupConn is the kubelet connection the upgrade-aware proxy is handed: until the upgrade is
// answered, its reads and writes (the request, the kubelet's answer) run on a fresh stack.
type setupConn struct {
	net.Conn
	s   *Session
	cut wirespdy.FrameCutter // the kubelet's SPDY frames, as they are read
	out io.Writer            // the client's bytes after the upgrade (see kubeletWriter); nil: tlsrecord.Write
}

func (c *setupConn) Read(p []byte) (n int, err error) {
	if c.s.relaying.Load() {
		// The kubelet writes each SPDY frame's header as two 4-byte records, as clients do.
		if n, err = c.Conn.Read(p); err == nil {
			n = wire.ReadMore(c.Conn, p, n)
		}
		if c.s.kubeletSPDY.Load() {
			n, err = c.withBody(p, n, err)
		}
		return n, err
	}
	freshStack(func() { n, err = c.Conn.Read(p) })
	return n, err
}

// withBody reads on while the n bytes read into p are no more than a SPDY frame's header: its
// body follows at once, and the header relayed alone would be a TLS record and a system call of
// its own here, in kube-apiserver and in the client. Holding it back holds nothing a client could
// use: a frame is read whole.
func (c *setupConn) withBody(p []byte, n int, err error) (int, error) {
	followed := 0
	for {
		c.cut.Follow(p[followed:n])
		followed = n
		if err != nil || n > wirespdy.FrameHeaderLen || n == len(p) || !c.cut.HeaderOnly() {
			return n, err
		}
		var m int
		m, err = c.Conn.Read(p[n:])
		n += m
		if err == nil {
			n = wire.ReadMore(c.Conn, p, n)
		}
	}
}

func (c *setupConn) Write(p []byte) (n int, err error) {
	if c.s.relaying.Load() {
		// The holdback follows SPDY frames: a WebSocket passed through to the kubelet is written as it is.
		if c.out != nil && c.s.kubeletSPDY.Load() {
			return c.out.Write(p)
		}
		return tlsrecord.Write(c.Conn, p)
	}
	freshStack(func() { n, err = c.Conn.Write(p) })
	return n, err
}

// freshStack runs f on a goroutine of its own and waits for it. A session's goroutine waits in
// the upgrade-aware proxy for the session's whole life, and a stack the runtime grew stays grown
// while its goroutine is parked that deep: TLS records and the audit record's encoding, before the
// upgrade, grow a goroutine that ends with them instead. A panic in f is the caller's.
func freshStack(f func()) {
	var panicked any
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { panicked = recover() }()
		f()
	}()
	<-done
	if panicked != nil {
		panic(panicked)
	}
}
