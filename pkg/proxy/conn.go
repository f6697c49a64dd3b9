package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
	"github.com/exec-proxy/exec-proxy/pkg/wire/tlsrecord"
	"github.com/exec-proxy/exec-proxy/pkg/wire/websocket"
)

// limiterBurst must cover the largest single read or write: x/time/rate's WaitN fails when n
// exceeds the burst, so I/O is cut into chunks of this size when a bandwidth limit is set.
const limiterBurst = 32 << 10

// sessionWriter hands the session's handlers a hijackable ResponseWriter whose connection is
// counted, throttled and closable by exec-proxy (idle timeout, max duration, shutdown).
type sessionWriter struct {
	http.ResponseWriter
	s      *Session
	status int
	// onHijack hears that the client's connection is the session's now.
	onHijack func()
	// coalesce: the client's connection is relayed as it is (SPDY), see wire.ReadMore.
	coalesce bool
	// directStdin: the stream translator serves the session, with stdin and no bandwidth limit;
	// its stdin goes to the kubelet directly (see stdinFilter).
	directStdin bool
}

func (w *sessionWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *sessionWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	raw, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	c := &sessionConn{Conn: raw, s: w.s, coalesce: w.coalesce}
	switch {
	case w.s.outLimit != nil:
		c.out = newOutQueue(c, outQueueLen(float64(w.s.outLimit.Limit())))
	case !w.coalesce: // WebSocket
		c.frames = &wire.FrameWriter{W: tlsrecord.Writer{Conn: raw}, Cut: &websocket.FrameCutter{}}
		if w.directStdin {
			c.stdin = &stdinFilter{c: c, route: newStdinRoute()}
		}
	}
	// Bytes the server already buffered from the client must still pass through the counters.
	if n := rw.Reader.Buffered(); n > 0 {
		buffered, _ := rw.Reader.Peek(n)
		c.pending = append([]byte(nil), buffered...)
	}
	w.s.attach(c)
	// The server's response (with its buffers and its connection's) is done with: let it go, though
	// the session's handlers keep this writer for the session's life.
	w.ResponseWriter = hijackedWriter{}
	if w.onHijack != nil {
		w.onHijack()
	}
	return c, bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c)), nil
}

// hijackedWriter stands for the server's response after the hijack, as net/http answers then.
type hijackedWriter struct{}

func (hijackedWriter) Header() http.Header       { return http.Header{} }
func (hijackedWriter) Write([]byte) (int, error) { return 0, http.ErrHijacked }
func (hijackedWriter) WriteHeader(int)           {}

// sessionConn is the client side of an upgraded session.
type sessionConn struct {
	net.Conn
	s         *Session
	pending   []byte
	firstSeen atomic.Bool
	closeOnce sync.Once
	closing   atomic.Bool // exec-proxy is closing the connection
	coalesce  bool
	out       *outQueue // bandwidth-limited sessions only
	// frames writes a WebSocket session's frames to the client whole: upstream's stream translator
	// writes each through the 4 KiB buffer it is handed at the hijack, in two writes or more.
	frames *wire.FrameWriter
	// lanes orders the translator's frames and those the kubelet leg writes directly (direct.go).
	lanes   interleaved
	idle    atomic.Int64 // wsstream's idle timeout, in nanoseconds
	renewed int64        // when a direct frame last renewed it
	stdin   *stdinFilter // see direct_stdin.go
	// refusal holds the kubelet's answer when it did not upgrade: the upgrade-aware proxy would
	// echo it as it came (any text, any code); the client gets a Status made of it on Close.
	refusal atomic.Pointer[bytes.Buffer]
}

// maxRefusal bounds what is kept of a kubelet's refusal: its message is shown, not its pages.
const maxRefusal = 16 << 10

func (c *sessionConn) Read(p []byte) (int, error) {
	if c.stdin != nil {
		return c.stdin.read(p)
	}
	return c.rawRead(p)
}

// rawRead reads the client's bytes as they came: counted, read by the frame reader and throttled.
func (c *sessionConn) rawRead(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		c.s.frameReader().FromClient(p[:n])
		c.s.countIn(n)
		return c.afterFrameReader(n, nil)
	}
	if c.s.inLimit != nil && len(p) > limiterBurst {
		p = p[:limiterBurst]
	}
	n, err := c.Conn.Read(p)
	if err == nil && c.coalesce {
		n = wire.ReadMore(c.Conn, p, n)
	}
	// EOF: the client closed its side, unless exec-proxy is closing (its TLS close_notify, answered
	// in kind, reads as EOF too). It vanished if it had not been told how the command ended yet:
	// clients close after the exit status as a matter of course.
	// The frames are read inline, so what reached the client has been read by now.
	if err != nil && !c.closing.Load() {
		var ne net.Error
		if !(errors.As(err, &ne) && ne.Timeout()) && !c.s.stats.told() {
			c.s.clientClosed.Store(true) // EOF, or a connection the client reset
		}
		if c.s.cancel != nil {
			// Nothing more can reach the client. Over WebSocket the translator would otherwise
			// wait for the command to end, however long it runs.
			defer c.s.cancel()
		}
	}
	if n > 0 {
		c.s.frameReader().FromClient(p[:n])
		c.s.countIn(n)
		if werr := wait(c.s.ctx, c.s.inLimit, n); werr != nil && err == nil {
			err = werr
		}
	}
	return c.afterFrameReader(n, err)
}

// errProtocol ends the copy to the kubelet of a client that sent what is not the protocol.
var errProtocol = errors.New("the client sent frames that are not the protocol's")

// afterFrameReader keeps what the frame reader found unreadable from reaching the kubelet.
func (c *sessionConn) afterFrameReader(n int, err error) (int, error) {
	if c.s.protocolError.Load() {
		return 0, errProtocol
	}
	return n, err
}

func (c *sessionConn) Write(p []byte) (n int, err error) {
	if !c.firstSeen.Load() {
		// The answer to the upgrade, with its audit record: see freshStack.
		freshStack(func() { n, err = c.write(p) })
		return n, err
	}
	return c.write(p)
}

func (c *sessionConn) write(p []byte) (int, error) {
	if r := c.refusal.Load(); r != nil {
		r.Write(p[:min(len(p), max(0, maxRefusal-r.Len()))])
		return len(p), nil
	}
	if !c.firstSeen.Swap(true) {
		code, err := c.s.noteResponse(p)
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
		c.s.frameReader().ToClient(frames)
		if !c.s.clientWebSocket.Load() {
			c.frames = nil
		}
		if c.frames != nil { // the frames after the head go with it; the frame writer takes up after them
			c.frames.Cut.Follow(frames)
			return c.send(p)
		}
	} else if c.frames != nil {
		return c.writeFrames(p)
	} else {
		c.s.frameReader().ToClient(p)
	}
	return c.send(p)
}

func (c *sessionConn) send(p []byte) (int, error) {
	if c.out != nil {
		return c.out.write(p)
	}
	n, err := tlsrecord.Write(c.Conn, p)
	c.s.countOut(n)
	return n, err
}

// refuse answers the client with err's Status instead of the upgrade, and closes the connection.
func (c *sessionConn) refuse(err error) {
	c.writeStatus(err)
	_ = c.Close()
}

// writeStatus writes err to the client as a Status response that closes the connection.
func (c *sessionConn) writeStatus(err error) {
	code := writeStatusResponse(c.Conn, err)
	c.s.mu.Lock()
	c.s.code = code
	c.s.mu.Unlock()
}

// Close closes the connection once what is queued for the client has reached it (see outQueue).
func (c *sessionConn) Close() error {
	var err error
	c.closing.Store(true)
	c.closeOnce.Do(func() {
		if r := c.refusal.Load(); r != nil {
			c.writeStatus(rawKubeletRefusal(c.s.Node, c.s.Address, r.Bytes()))
		}
		if c.out != nil {
			c.out.finish()
		}
		err = c.Conn.Close()
		if c.frames != nil {
			c.lanes.end()
		}
		if c.stdin != nil {
			c.stdin.route.end()
		}
	})
	return err
}

func wait(ctx context.Context, lim *rate.Limiter, n int) error {
	if lim == nil {
		return nil
	}
	return lim.WaitN(ctx, n)
}

// parseResponseHead reads the status code and negotiated protocol from the first bytes the proxy
// writes back to the client: the kubelet's (or the translator's) upgrade response.
func parseResponseHead(p []byte) (code int, protocol, upgrade string) {
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

func nowNano() int64 { return time.Now().UnixNano() }
