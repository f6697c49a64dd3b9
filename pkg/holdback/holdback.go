// Package holdback keeps keep-alives from a kubelet that may have closed with output unsent.
//
// The kubelet closes its connection as soon as the command's last output and exit status are in
// its socket's send buffer. exec-proxy may not have read them yet: it reads a bandwidth-limited
// session's output no faster than the limit, and TCP's window holds the rest back in the kubelet's
// kernel. A byte that reaches the kubelet's closed socket makes that kernel answer with a reset,
// which throws away what it has not sent: the end of the output and the exit status. The clients'
// keep-alives did exactly that (a SPDY PING every 5 s from kubectl and from the stream translator).
//
// So a write to the kubelet that is nothing but PING frames waits while the kubelet may still hold
// output exec-proxy has not read: until a read found the kubelet's socket empty and nothing came
// for settle after it (exec-proxy's window is then open, and the kubelet has sent what it had: a
// kubelet still sending, held back by its congestion window only, sends again within a round
// trip). Anything else (input, resizes, the
// end of a stream) goes at once, after the PINGs held before it: what the user sends is not held.
// spdystream sends a PING only once the last one is answered, and the answer comes behind the
// output, so at most one PING per connection waits.
package holdback

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// settle is how long the kubelet's socket stays empty before held PINGs go: far longer than a
// round trip to a kubelet, far shorter than spdystream's 5 s between PINGs.
const settle = 25 * time.Millisecond

// Reading tells whether the last read from the kubelet's socket found it empty.
type Reading struct {
	drained  atomic.Bool
	lastData atomic.Int64 // when a read last returned bytes, in Unix nanoseconds
	mu       sync.Mutex
	wake     chan struct{} // closed when drained turns true; nil when nobody waits
	closed   chan struct{}
	once     sync.Once
}

// NewReading starts drained: nothing has come yet.
func NewReading() *Reading {
	r := &Reading{closed: make(chan struct{})}
	r.drained.Store(true)
	return r
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (r *Reading) set(drained bool) {
	if !drained {
		r.lastData.Store(time.Now().UnixNano())
	}
	if r.drained.Swap(drained) == drained || !drained {
		return
	}
	r.mu.Lock()
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
	r.mu.Unlock()
}

// Drained reports whether the last read found the socket empty.
func (r *Reading) Drained() bool { return r.drained.Load() }

// settledFor is how much longer the socket must stay empty to count as settled (0: it is).
func (r *Reading) settledFor() time.Duration {
	if !r.drained.Load() {
		return settle
	}
	return max(0, settle-time.Since(time.Unix(0, r.lastData.Load())))
}

// caughtUp is closed once a read finds the socket empty.
func (r *Reading) caughtUp() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.drained.Load() {
		return closedChan
	}
	if r.wake == nil {
		r.wake = make(chan struct{})
	}
	return r.wake
}

func (r *Reading) close() { r.once.Do(func() { close(r.closed) }) }

// Conn is the kubelet's TCP connection, under its TLS: its reads tell r whether they found the
// socket empty. On a connection that is no syscall.Conn, reads tell nothing and r stays drained:
// nothing is held.
type Conn struct {
	net.Conn
	r   *Reading
	raw rawReader
}

// NewConn wraps c, the kubelet's TCP connection.
func NewConn(c net.Conn, r *Reading) *Conn { return &Conn{Conn: c, r: r, raw: newRawReader(c)} }

func (c *Conn) Read(p []byte) (int, error) {
	if c.raw == nil || len(p) == 0 {
		return c.Conn.Read(p)
	}
	n, err := c.raw.read(p, func() { c.r.set(true) })
	switch {
	case err != nil:
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			c.r.set(true) // reading ended: nothing is to wait for
		}
		return 0, &net.OpError{Op: "read", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	case n == 0:
		c.r.set(true)
		return 0, io.EOF
	}
	c.r.set(false)
	return n, nil
}

func (c *Conn) Close() error {
	c.r.close()
	return c.Conn.Close()
}

// maxHeld bounds the PING frames held (12 bytes each); a client that sends more before an answer
// has them sent on.
const maxHeld = 16 * spdyPingLen

const spdyPingLen = 12

// Writer writes a client's SPDY frames to the kubelet (through w), holding back writes that are
// nothing but PING frames while r says the kubelet's socket may hold unread output.
type Writer struct {
	w        io.Writer
	r        *Reading
	mu       sync.Mutex // orders the writes to w: what is held goes first
	held     []byte
	flushing bool
	frames   pingFollower
	err      error // the failed write of held PINGs, returned by the next write
}

// NewWriter writes to w, the kubelet's connection, holding PINGs by r.
func NewWriter(w io.Writer, r *Reading) *Writer { return &Writer{w: w, r: r} }

func (h *Writer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return 0, h.err
	}
	pingsOnly := h.frames.follow(p)
	if pingsOnly && len(h.held)+len(p) <= maxHeld && (len(h.held) > 0 || h.r.settledFor() > 0) {
		h.held = append(h.held, p...)
		if !h.flushing {
			h.flushing = true
			go h.flushWhenCaughtUp()
		}
		return len(p), nil
	}
	if len(h.held) > 0 {
		p = append(h.held, p...)
		h.held = nil
	}
	return h.w.Write(p)
}

// flushWhenCaughtUp sends the held PINGs once the kubelet's socket has settled empty; a
// connection closed first takes none.
func (h *Writer) flushWhenCaughtUp() {
	var timer *time.Timer
wait:
	for h.r.settledFor() > 0 {
		select {
		case <-h.r.caughtUp():
		case <-h.r.closed:
			break wait
		}
		if d := h.r.settledFor(); d > 0 {
			if timer == nil {
				timer = time.NewTimer(d)
				defer timer.Stop()
			} else {
				timer.Reset(d)
			}
			select {
			case <-timer.C:
			case <-h.r.closed:
				break wait
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.flushing = false
	held := h.held
	h.held = nil
	select {
	case <-h.r.closed:
		return
	default:
	}
	if len(held) > 0 {
		if _, err := h.w.Write(held); err != nil && h.err == nil {
			h.err = err
		}
	}
}

// pingFollower follows the frames of a SPDY byte stream.
type pingFollower struct {
	head    [8]byte
	headLen int  // bytes of the current frame's header seen
	body    int  // bytes of the current frame's body still to come
	ping    bool // the frame whose body comes is a PING
}

// follow reads p as the stream's next bytes, and tells whether they are all of PING frames. The
// start of a header too short to tell counts as one: the bytes that follow decide.
func (f *pingFollower) follow(p []byte) bool {
	only := true
	for len(p) > 0 {
		if f.body > 0 {
			n := min(f.body, len(p))
			f.body -= n
			p = p[n:]
			only = only && f.ping
			continue
		}
		n := copy(f.head[f.headLen:], p)
		f.headLen += n
		p = p[n:]
		control := f.head[0]&0x80 != 0
		ping := control && (f.headLen < 4 || f.head[2] == 0 && f.head[3] == 6)
		only = only && ping
		if f.headLen == len(f.head) {
			f.body = int(f.head[5])<<16 | int(f.head[6])<<8 | int(f.head[7])
			f.ping = ping
			f.headLen = 0
		}
	}
	return only
}
