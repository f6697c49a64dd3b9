// Package clientconn is the client's side of a session: the connection the upgrade-aware proxy or
// the stream translator hijacks from the API server, counted, throttled, read by the session's
// frame readers, and closed by exec-proxy (idle timeout, max duration, kill, shutdown).
package clientconn

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"

	"github.com/exec-proxy/exec-proxy/pkg/proxy/internal/stack"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/wire"
	"github.com/exec-proxy/exec-proxy/pkg/wire/tlsrecord"
)

// LimiterBurst must cover the largest single read or write: x/time/rate's WaitN fails when n
// exceeds the burst, so I/O is cut into chunks of this size when a bandwidth limit is set.
const LimiterBurst = 32 << 10

// Session is what a client connection tells its session, and asks of it.
type Session interface {
	// Context ends with the session.
	Context() context.Context
	// Cancel ends the session: nothing more can reach the client.
	Cancel()
	CountIn(n int)
	CountOut(n int)
	// FrameReader reads the connection's bytes as they pass.
	FrameReader() wire.FrameReader
	// ProtocolError tells whether the client's frames were found not to be the protocol's.
	ProtocolError() bool
	// ExitStatusTold tells whether the error stream's message (the exit status) reached the client.
	ExitStatusTold() bool
	// ClientClosed: the client closed its side, or reset the connection.
	ClientClosed()
	// Answered hears the answer to the upgrade, as it is about to reach the client: its code, and
	// whether the client speaks WebSocket. An error refuses the session instead.
	Answered(head []byte) (code int, webSocket bool, err error)
	// Refused: the client was answered with a Status of code instead.
	Refused(code int)
	// KubeletRefusal is the Status that stands for the kubelet's raw answer other than 101.
	KubeletRefusal(raw []byte) error
	// Attach hands the session its client connection, once hijacked.
	Attach(c *Conn)
}

// Options say how a session's client connection is served.
type Options struct {
	// In and Out limit the bandwidth; nil: unlimited.
	In, Out *rate.Limiter
	// Coalesce: the connection is relayed as it is (SPDY); see wire.ReadMore.
	Coalesce bool
	// DirectStdin: the stream translator serves the session, with stdin and no bandwidth limit;
	// its stdin goes to the kubelet directly (see stdin.go).
	DirectStdin bool
	// OnHijack hears that the client's connection is the session's now.
	OnHijack func()
	// Joinable: others may type into the session (Inject) and its client hears of them (Notice).
	Joinable bool
}

// ResponseWriter hands the session's handlers a hijackable ResponseWriter whose connection is
// counted, throttled and closable by exec-proxy.
type ResponseWriter struct {
	http.ResponseWriter
	s      Session
	opts   Options
	status int
}

// NewResponseWriter wraps w, the API server's response to the session's request.
func NewResponseWriter(w http.ResponseWriter, s Session, opts Options) *ResponseWriter {
	return &ResponseWriter{ResponseWriter: w, s: s, opts: opts}
}

// Status is the code written through WriteHeader before the hijack, if any.
func (w *ResponseWriter) Status() int { return w.status }

func (w *ResponseWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *ResponseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	raw, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	c := NewConn(raw, w.s, w.opts)
	// Bytes the server already buffered from the client must still pass through the counters.
	if n := rw.Reader.Buffered(); n > 0 {
		buffered, _ := rw.Reader.Peek(n)
		c.keepBuffered(buffered)
	}
	w.s.Attach(c)
	// The server's response (with its buffers and its connection's) is done with: let it go, though
	// the session's handlers keep this writer for the session's life.
	w.ResponseWriter = hijackedWriter{}
	if w.opts.OnHijack != nil {
		w.opts.OnHijack()
	}
	return c, bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c)), nil
}

// hijackedWriter stands for the server's response after the hijack, as net/http answers then.
type hijackedWriter struct{}

func (hijackedWriter) Header() http.Header       { return http.Header{} }
func (hijackedWriter) Write([]byte) (int, error) { return 0, http.ErrHijacked }
func (hijackedWriter) WriteHeader(int)           {}

// Conn is the client side of an upgraded session.
type Conn struct {
	net.Conn
	s         Session
	in        *rate.Limiter
	pending   []byte // what the server had buffered at the hijack
	firstSeen atomic.Bool
	closeOnce sync.Once
	closing   atomic.Bool // exec-proxy is closing the connection
	coalesce  bool
	out       *outQueue    // bandwidth-limited sessions only
	frames    *frameWriter // see frames.go
	stdin     *stdinFilter // see stdin.go
	inject    *injector    // joinable sessions: see join.go
	notes     *notifier    // joinable SPDY sessions without a bandwidth limit: see join.go
	upgraded  atomic.Bool  // the answer to the upgrade reached the client
	// refusal holds the kubelet's answer when it did not upgrade: the upgrade-aware proxy would
	// echo it as it came (any text, any code); the client gets a Status made of it on Close.
	refusal atomic.Pointer[bytes.Buffer]
}

// NewConn is raw, a hijacked client connection, serving session s.
func NewConn(raw net.Conn, s Session, opts Options) *Conn {
	c := &Conn{Conn: raw, s: s, in: opts.In, coalesce: opts.Coalesce}
	switch {
	case opts.Out != nil:
		c.out = newOutQueue(c, opts.Out, outQueueLen(float64(opts.Out.Limit())))
	case !opts.Coalesce: // WebSocket
		c.frames = newFrameWriter(raw)
		if opts.DirectStdin {
			c.stdin = &stdinFilter{c: c, route: newStdinRoute()}
		}
	case opts.Joinable:
		c.notes = &notifier{}
	}
	if opts.Joinable {
		c.inject = newInjector(opts.Coalesce)
	}
	return c
}

// keepBuffered keeps what the server read of the client before the hijack, to be read first.
func (c *Conn) keepBuffered(p []byte) { c.pending = append([]byte(nil), p...) }

// maxRefusal bounds what is kept of a kubelet's refusal: its message is shown, not its pages.
const maxRefusal = 16 << 10

func (c *Conn) Read(p []byte) (int, error) {
	if c.stdin != nil {
		return c.stdin.read(p)
	}
	return c.rawRead(p)
}

// rawRead reads the client's bytes as they came: counted, read by the frame reader and throttled;
// and the frames injected between them (see join.go).
func (c *Conn) rawRead(p []byte) (int, error) {
	if c.inject == nil {
		n, _, err := c.clientRead(p)
		return n, err
	}
	for {
		if n, ok := c.inject.take(p, c.stdinFrame); ok {
			c.s.FrameReader().FromClient(p[:n])
			return c.afterRead(n, nil)
		}
		if n, woken, err := c.clientRead(p); !woken {
			return n, err
		}
	}
}

// clientRead is rawRead of the client's own bytes; woken: a wake (see join.go) returned it, empty.
func (c *Conn) clientRead(p []byte) (n int, woken bool, err error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		c.followClient(p[:n])
		c.s.FrameReader().FromClient(p[:n])
		c.s.CountIn(n)
		n, err = c.afterRead(n, nil)
		return n, false, err
	}
	if c.in != nil && len(p) > LimiterBurst {
		p = p[:LimiterBurst]
	}
	n, err = c.Conn.Read(p)
	if err != nil && c.inject != nil && c.woken(err) {
		if n == 0 {
			return 0, true, nil
		}
		err = nil
	}
	if err == nil && c.coalesce {
		n = wire.ReadMore(c.Conn, p, n)
	}
	// EOF: the client closed its side, unless exec-proxy is closing (its TLS close_notify, answered
	// in kind, reads as EOF too). It vanished if it had not been told how the command ended yet:
	// clients close after the exit status as a matter of course.
	// The frames are read inline, so what reached the client has been read by now.
	if err != nil && !c.closing.Load() {
		var ne net.Error
		if !(errors.As(err, &ne) && ne.Timeout()) && !c.s.ExitStatusTold() {
			c.s.ClientClosed() // EOF, or a connection the client reset
		}
		// Nothing more can reach the client. Over WebSocket the translator would otherwise wait
		// for the command to end, however long it runs.
		defer c.s.Cancel()
	}
	if n > 0 {
		c.followClient(p[:n])
		c.s.FrameReader().FromClient(p[:n])
		c.s.CountIn(n)
		if werr := wait(c.s.Context(), c.in, n); werr != nil && err == nil {
			err = werr
		}
	}
	n, err = c.afterRead(n, err)
	return n, false, err
}

// followClient follows the client's frame boundaries, where injected frames go.
func (c *Conn) followClient(p []byte) {
	if c.inject != nil {
		c.inject.follow(p)
	}
}

// errProtocol ends the copy to the kubelet of a client that sent what is not the protocol.
var errProtocol = errors.New("the client sent frames that are not the protocol's")

// afterRead keeps what the frame reader found unreadable from reaching the kubelet.
func (c *Conn) afterRead(n int, err error) (int, error) {
	if c.s.ProtocolError() {
		return 0, errProtocol
	}
	return n, err
}

func (c *Conn) Write(p []byte) (n int, err error) {
	if !c.firstSeen.Load() {
		// The answer to the upgrade, with its audit record: see stack.Fresh.
		stack.Fresh(func() { n, err = c.write(p) })
		return n, err
	}
	return c.write(p)
}

func (c *Conn) write(p []byte) (int, error) {
	if r := c.refusal.Load(); r != nil {
		r.Write(p[:min(len(p), max(0, maxRefusal-r.Len()))])
		return len(p), nil
	}
	if !c.firstSeen.Swap(true) {
		code, webSocket, err := c.s.Answered(p)
		if err != nil {
			c.refuse(err)
			return 0, err
		}
		if code != http.StatusSwitchingProtocols {
			r := &bytes.Buffer{}
			r.Write(p[:min(len(p), maxRefusal)])
			c.refusal.Store(r)
			return len(p), nil
		}
		frames := afterHead(p)
		c.s.FrameReader().ToClient(frames)
		if !webSocket {
			c.frames = nil
		}
		defer c.upgraded.Store(true)
		if c.frames != nil { // the frames after the head go with it; the frame writer takes up after them
			c.frames.follow(frames)
			return c.send(p)
		}
		if c.notes != nil {
			return c.sendNoted(p, frames, true)
		}
	} else if c.frames != nil {
		return c.writeFrames(p)
	} else if c.notes != nil {
		return c.sendNoted(p, p, false)
	} else {
		c.s.FrameReader().ToClient(p)
	}
	return c.send(p)
}

func (c *Conn) send(p []byte) (int, error) {
	if c.out != nil {
		return c.out.write(p)
	}
	n, err := tlsrecord.Write(c.Conn, p)
	c.s.CountOut(n)
	return n, err
}

// refuse answers the client with err's Status instead of the upgrade, and closes the connection.
func (c *Conn) refuse(err error) {
	c.writeStatus(err)
	_ = c.Close()
}

// writeStatus writes err to the client as a Status response that closes the connection.
func (c *Conn) writeStatus(err error) {
	c.s.Refused(session.WriteStatusResponse(c.Conn, err))
}

// Close closes the connection once what is queued for the client has reached it (see outQueue).
func (c *Conn) Close() error {
	var err error
	c.closing.Store(true)
	c.closeOnce.Do(func() {
		if r := c.refusal.Load(); r != nil {
			c.writeStatus(c.s.KubeletRefusal(r.Bytes()))
		}
		if c.out != nil {
			c.out.finish()
		}
		err = c.Conn.Close()
		if c.frames != nil {
			c.frames.end()
		}
		if c.stdin != nil {
			c.stdin.route.End()
		}
	})
	return err
}

// Direct is the connection the kubelet side writes stdout and stderr frames to itself (see
// frames.go), or nil: a bandwidth-limited or SPDY session's bytes go through Write only.
func (c *Conn) Direct() *Conn {
	if c.frames == nil {
		return nil
	}
	return c
}

// StdinRoute is where the client's stdin goes directly to the kubelet, if it does.
func (c *Conn) StdinRoute() *StdinRoute {
	if c.stdin == nil {
		return nil
	}
	return c.stdin.route
}

func wait(ctx context.Context, lim *rate.Limiter, n int) error {
	if lim == nil {
		return nil
	}
	return lim.WaitN(ctx, n)
}

// ParseResponseHead reads the status code and negotiated protocol from the first bytes the proxy
// writes back to the client: the kubelet's (or the translator's) upgrade response.
func ParseResponseHead(p []byte) (code int, protocol, upgrade string) {
	end := bytes.Index(p, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(p)
	}
	lines := bytes.Split(p[:end], []byte("\r\n"))
	if len(lines) == 0 {
		return 0, "", ""
	}
	fields := bytes.Fields(lines[0])
	if len(fields) >= 2 && bytes.HasPrefix(fields[0], []byte("HTTP/")) {
		for _, b := range fields[1] {
			if b < '0' || b > '9' {
				return 0, "", ""
			}
			code = code*10 + int(b-'0')
		}
	}
	for _, l := range lines[1:] {
		k, v, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		switch http.CanonicalHeaderKey(string(bytes.TrimSpace(k))) {
		case "X-Stream-Protocol-Version", "Sec-Websocket-Protocol":
			protocol = string(bytes.TrimSpace(v))
		case "Upgrade":
			upgrade = string(bytes.TrimSpace(v))
		}
	}
	return code, protocol, upgrade
}

// afterHead is what follows the response head in p: the first frames, if any.
func afterHead(p []byte) []byte {
	if i := bytes.Index(p, []byte("\r\n\r\n")); i >= 0 {
		return p[i+4:]
	}
	return nil
}
