// Package kubeletconn is the kubelet's side of a session: the connection dialed and verified for
// it, handed to upstream's upgrade-aware proxy or stream translator, and what exec-proxy does on
// it (throttling, whole frames, stdout and stderr written to the client directly).
package kubeletconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"

	"k8s.io/streaming/pkg/httpstream/wsstream"

	"github.com/exec-proxy/exec-proxy/pkg/holdback"
	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/clientconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/internal/stack"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/wire"
	wirespdy "github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
	"github.com/exec-proxy/exec-proxy/pkg/wire/tlsrecord"
)

// A session's connection to its kubelet is dialed, and the kubelet's certificate verified, on the
// request's goroutine before the session's own goroutine starts. The TLS handshake runs deep, and
// the session's goroutine then waits in the upgrade-aware proxy for the session's whole life:
// grown by the handshake, its stack would stay at 8 KiB (the runtime shrinks a stack only when its
// frames leave three quarters of it free). The upgrade-aware proxy and the translator are handed
// that connection: the proxy through the dialer of its transport, so the URL it is given is http,
// the TLS being under it, as the translator's is.

// Client is the session's client side, as the translator's connection to the kubelet sees it.
type Client interface {
	// DirectConn is where stdout and stderr frames are written directly, or nil.
	DirectConn() *clientconn.Conn
	// StdinRoute is where the client's stdin is told of the stdin stream, or nil.
	StdinRoute() *clientconn.StdinRoute
	// Translated is what hears the frames on the translator's connections, made when the first
	// connects: a session the translator does not serve keeps none.
	Translated() Tally
}

// Side is a session's kubelet side: its verified connection, which the upgrade-aware proxy or
// the translator takes once, and the translator's connections that use it.
type Side struct {
	node, address string
	client        Client
	// upgraded: the kubelet's 101 reached the client; spdy: and the kubelet speaks SPDY.
	upgraded, spdy atomic.Bool

	mu        sync.Mutex
	conn      net.Conn       // dialed and verified, until taken
	lingering *lingeringConn // under the upgrade-aware proxy
	// reading follows the reads from a bandwidth-limited session's kubelet, so that keep-alives
	// wait while it may hold output exec-proxy has not read (see package holdback).
	reading *holdback.Reading
	// conns counts the translator's connections still open; endConns ends them.
	conns     sync.WaitGroup
	connsCtx  context.Context
	endConns  context.CancelFunc
	connected bool // the translator connected
}

// NewSide is the kubelet side of a session on node's kubelet at address.
func NewSide(node, address string, client Client) *Side {
	b := &Side{node: node, address: address, client: client}
	b.connsCtx, b.endConns = context.WithCancel(context.Background())
	return b
}

// Dial connects to the kubelet. The TLS runs over a tlsrecord.Conn; under the upgrade-aware proxy,
// over a lingeringConn too (see there). A bandwidth-limited session's reads from the kubelet tell
// whether they caught up with it, under the TLS too (see package holdback).
func (b *Side) Dial(ctx context.Context, t *nodeconn.Transport, limited, upgradeProxy bool) error {
	var reading *holdback.Reading
	if limited {
		reading = holdback.NewReading()
	}
	var lingering *lingeringConn
	wrap := func(c net.Conn) net.Conn {
		if reading != nil {
			c = holdback.NewConn(c, reading)
		}
		if upgradeProxy {
			lingering = newLingeringConn(c)
			c = lingering
		}
		return &tlsrecord.Conn{Conn: c}
	}
	conn, err := t.DialKubelet(ctx, b.address, wrap)
	if err != nil {
		return err
	}
	handshakes.WithLabelValues(strconv.FormatBool(conn.ConnectionState().DidResume)).Inc()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.conn, b.reading, b.lingering = conn, reading, lingering
	return nil
}

// Upgraded: the kubelet's 101 is reaching the client; spdy tells whether the kubelet speaks SPDY.
func (b *Side) Upgraded(spdy bool) {
	b.spdy.Store(spdy)
	b.mu.Lock()
	if b.lingering != nil {
		b.lingering.arm()
	}
	b.mu.Unlock()
	b.upgraded.Store(true)
}

// writer writes the client's (or the translator's) frames to the kubelet's connection conn:
// through a holdback.Writer in a bandwidth-limited session.
func (b *Side) writer(conn net.Conn) io.Writer {
	b.mu.Lock()
	reading := b.reading
	b.mu.Unlock()
	if reading == nil {
		return tlsrecord.Writer{Conn: conn}
	}
	return holdback.NewWriter(tlsrecord.Writer{Conn: conn}, reading)
}

// take hands over the verified connection, once, for the kubelet at address.
func (b *Side) take(address string) (net.Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	conn := b.conn
	switch {
	case conn == nil:
		return nil, fmt.Errorf("error dialing backend: exec-proxy holds no verified connection to the kubelet at %s for this session", address)
	case address != b.address:
		return nil, fmt.Errorf("error dialing backend: the session's kubelet is %s, not %s", b.address, address)
	}
	b.conn = nil
	return conn, nil
}

// Close closes the verified connection if nothing took it (the session was refused first).
func (b *Side) Close() {
	b.mu.Lock()
	conn := b.conn
	b.conn = nil
	b.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

// addConn counts one more translator's connection.
func (b *Side) addConn() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.connected = true
	b.conns.Add(1)
}

// connClosed counts one translator's connection fewer.
func (b *Side) connClosed() { b.conns.Done() }

// EndTranslator ends the translator's connections and waits for them to be closed; it tells
// whether the translator connected at all (then Client.Translated heard the kubelet's frames).
func (b *Side) EndTranslator() bool {
	b.endConns()
	b.conns.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.connected
}

type sideKey struct{}

// WithSide is ctx for the requests of the session whose kubelet side b is.
func WithSide(ctx context.Context, b *Side) context.Context {
	return context.WithValue(ctx, sideKey{}, b)
}

// taken is the verified connection of the session whose request ctx is; without a session there
// is none: neither the upgrade-aware proxy nor the translator dials.
func taken(ctx context.Context, address string) (*Side, net.Conn, error) {
	b, _ := ctx.Value(sideKey{}).(*Side)
	if b == nil {
		return nil, nil, errors.New("error dialing backend: not a session's request")
	}
	conn, err := b.take(address)
	return b, conn, err
}

// dialUpgrade is the upgrade-aware proxy's dialer. It never dials: without its session's verified
// connection, it fails rather than reach a kubelet unverified or in the clear.
func dialUpgrade(ctx context.Context, _, address string) (net.Conn, error) {
	b, conn, err := taken(ctx, address)
	if err != nil {
		return nil, err
	}
	return &setupConn{Conn: conn, b: b, out: b.writer(conn)}, nil
}

// UpgradeTransport is the upgrade-aware proxy's transport: its dialer hands over the session's
// verified connection.
func UpgradeTransport() *http.Transport { return &http.Transport{DialContext: dialUpgrade} }

// TLSUnderneath is loc as the upgrade-aware proxy and the translator are given it: http, since
// the connection they are handed is TLS already.
func TLSUnderneath(loc *url.URL) *url.URL {
	plain := *loc
	plain.Scheme = "http"
	return &plain
}

// headerNames are the request headers the kubelet is sent: what an upgrade needs, who the client
// is (User-Agent) and where it came from. The rest (who the user is, from the front proxy; the
// client's own headers) is not the kubelet's, and the upgrade-aware proxy would hold it for the
// session's life.
var headerNames = []string{"Connection", "Upgrade", "X-Stream-Protocol-Version",
	"Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions",
	"Origin", "User-Agent", "X-Forwarded-For"}

// Header is what of h is sent to the kubelet (see headerNames).
func Header(h http.Header) http.Header {
	n := 0
	for _, name := range headerNames {
		if len(h[name]) > 0 {
			n++
		}
	}
	out := make(http.Header, n) // held for the session's life: no room to spare
	for _, name := range headerNames {
		if v := h[name]; len(v) > 0 {
			out[name] = v
		}
	}
	return out
}

// ViaUpgradeProxy tells whether the upgrade-aware proxy carries req, or the stream translator
// (WebSocket v5 exec and attach). A kubelet that serves WebSocket itself (kubeletWebSockets) is
// given every session as it came; port-forward over WebSocket to one that does not is tunnelled,
// over the upgrade-aware proxy.
func ViaUpgradeProxy(req *http.Request, kind session.Kind, kubeletWebSockets bool) bool {
	return kubeletWebSockets || kind == session.KindPortForward || !wsstream.IsWebSocketRequestWithStreamCloseProtocol(req)
}

// setupConn is the kubelet connection the upgrade-aware proxy is handed: until the upgrade is
// answered, its reads and writes (the request, the kubelet's answer) run on a fresh stack.
type setupConn struct {
	net.Conn
	b   *Side
	cut wirespdy.FrameCutter // the kubelet's SPDY frames, as they are read
	out io.Writer            // the client's bytes after the upgrade (see Side.writer)
}

func (c *setupConn) Read(p []byte) (n int, err error) {
	if c.b.upgraded.Load() {
		// The kubelet writes each SPDY frame's header as two 4-byte records, as clients do.
		if n, err = c.Conn.Read(p); err == nil {
			n = wire.ReadMore(c.Conn, p, n)
		}
		if c.b.spdy.Load() {
			n, err = c.withBody(p, n, err)
		}
		return n, err
	}
	stack.Fresh(func() { n, err = c.Conn.Read(p) })
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
	if c.b.upgraded.Load() {
		// The holdback follows SPDY frames: a WebSocket passed through to the kubelet is written as it is.
		if c.b.spdy.Load() {
			return c.out.Write(p)
		}
		return tlsrecord.Write(c.Conn, p)
	}
	stack.Fresh(func() { n, err = c.Conn.Write(p) })
	return n, err
}
