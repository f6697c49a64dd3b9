package clientconn

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	wirespdy "github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
	"github.com/exec-proxy/exec-proxy/pkg/wire/websocket"
)

// Joining a session (kubectl execproxy join): a joiner's typing reaches the kubelet as stdin
// frames in the client's own protocol, put into the client's byte stream between its frames
// (Inject), before the frame reader and the stdin written directly: every later stage (the frame
// reader, the translator, the kubelet) takes them as the client's. The client hears who joined and
// left in stdout frames put between the kubelet's (Notice).

var (
	// ErrNotJoinable: the session's connection takes no frames of exec-proxy's.
	ErrNotJoinable = errors.New("the session's connection cannot be joined")
	// ErrStdinEnded: the session's stdin is not open (ended, or not opened yet): nothing typed can reach it.
	ErrStdinEnded = errors.New("the session's stdin is not open")
	// ErrNoStdout: the session's stdout stream is not open (not yet, over SPDY, just after the
	// 101): no notice can reach the client.
	ErrNoStdout = errors.New("the session's stdout is not open")
	// errSessionEnded: the session ended before the typing reached it.
	errSessionEnded = errors.New("the session ended")
)

// maxInjectedFrame bounds the payload of one frame a joiner's typing is cut into. Inject returns
// only once its frame was read, so this is also the most of a join's typing held here: more waits.
const maxInjectedFrame = 4 << 10

// maxHeldNotices bounds the notices a SPDY session holds for a frame boundary; more are dropped.
const maxHeldNotices = 32

// longAgo is a read deadline already past: it wakes a read blocked on the client.
var longAgo = time.Unix(1, 0)

// injector puts injected frames between the client's.
type injector struct {
	// The reader's own (rawRead): the client's frame boundaries, and the injected frame it is reading.
	cut     interface{ Follow([]byte) bool }
	between bool // the client's bytes read so far end on a frame boundary
	cur     *injection
	// waking: a wake put the read deadline in the past, which the reader has not seen yet.
	waking atomic.Bool
	// readDeadline is the read deadline others set (wsstream's idle timeout), in UnixNano; 0: none.
	readDeadline atomic.Int64

	mu    sync.Mutex
	queue []*injection
}

// injection is one frame of a joiner's typing.
type injection struct {
	data  []byte // the typing, copied
	frame []byte // once made: what of the frame the reader has yet to read
	done  chan error
}

func newInjector(spdy bool) *injector {
	if spdy {
		return &injector{cut: &wirespdy.FrameCutter{}, between: true}
	}
	return &injector{cut: &websocket.FrameCutter{}, between: true}
}

// Inject writes data to the kubelet as the client's stdin, in frames of the session's protocol put
// between the client's frames. It returns once they were read on their way to the kubelet, or with
// what kept them from it: ErrStdinEnded, the session's end, ctx's end.
func (c *Conn) Inject(ctx context.Context, data []byte) error {
	if c.inject == nil {
		return ErrNotJoinable
	}
	for len(data) > 0 {
		n := min(len(data), maxInjectedFrame)
		in := &injection{data: append([]byte(nil), data[:n]...), done: make(chan error, 1)}
		data = data[n:]
		c.inject.add(in)
		c.wake()
		var err error
		select {
		case err = <-in.done:
		case <-ctx.Done():
			err = ctx.Err()
		case <-c.s.Context().Done():
			err = errSessionEnded
		}
		if err != nil {
			c.inject.drop(in)
			return err
		}
	}
	return nil
}

func (j *injector) add(in *injection) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.queue = append(j.queue, in)
}

// next takes the first injection off the queue; nil if there is none.
func (j *injector) next() *injection {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.queue) == 0 {
		return nil
	}
	in := j.queue[0]
	j.queue = j.queue[1:]
	return in
}

// drop takes in off the queue, if the reader has not taken it yet.
func (j *injector) drop(in *injection) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i, q := range j.queue {
		if q == in {
			j.queue = append(j.queue[:i], j.queue[i+1:]...)
			return
		}
	}
}

// wake makes a read blocked on the client return, to read the frame just queued.
func (c *Conn) wake() {
	c.inject.waking.Store(true)
	_ = c.Conn.SetReadDeadline(longAgo)
}

// woken tells whether err, a read's, is a wake's timeout; the read deadline others set is back.
func (c *Conn) woken(err error) bool {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !c.inject.waking.Swap(false) {
		return false
	}
	d := c.inject.readDeadline.Load()
	var t time.Time
	if d != 0 {
		t = time.Unix(0, d)
	}
	_ = c.Conn.SetReadDeadline(t)
	return d == 0 || time.Now().UnixNano() < d // else the deadline others set passed as well
}

// setReadDeadline notes t, the read deadline others set.
func (j *injector) setReadDeadline(t time.Time) {
	var d int64
	if !t.IsZero() {
		d = t.UnixNano()
	}
	j.readDeadline.Store(d)
}

// SetReadDeadline sets the read deadline; one a wake set stands until the reader saw it.
func (c *Conn) SetReadDeadline(t time.Time) error {
	err := c.Conn.SetReadDeadline(t)
	c.keepWake(t)
	return err
}

// keepWake notes t, the read deadline just set by others, and puts a wake's back over it.
func (c *Conn) keepWake(t time.Time) {
	if c.inject == nil {
		return
	}
	c.inject.setReadDeadline(t)
	if c.inject.waking.Load() {
		_ = c.Conn.SetReadDeadline(longAgo)
	}
}

// follow follows the client's bytes p, read from the client.
func (j *injector) follow(p []byte) { j.between = j.cut.Follow(p) }

// take reads injected bytes into p when an injected frame is due: one is being read, or the
// client's bytes end on a frame boundary and one is queued. frameOf makes an injection's frame.
func (j *injector) take(p []byte, frameOf func([]byte) ([]byte, error)) (int, bool) {
	for j.cur == nil {
		if !j.between {
			return 0, false
		}
		in := j.next()
		if in == nil {
			return 0, false
		}
		frame, err := frameOf(in.data)
		if err != nil {
			in.done <- err
			continue
		}
		in.frame, j.cur = frame, in
	}
	n := copy(p, j.cur.frame)
	j.cur.frame = j.cur.frame[n:]
	if len(j.cur.frame) == 0 {
		j.cur.done <- nil
		j.cur = nil
	}
	return n, true
}

// stdinFrame is data as a frame of the client's on its stdin stream: a SPDY DATA frame, or a
// masked binary WebSocket message on channel 0.
func (c *Conn) stdinFrame(data []byte) ([]byte, error) {
	switch r := c.s.FrameReader().(type) {
	case *wirespdy.FrameReader:
		id, open, _ := r.Open("stdin")
		if !open {
			return nil, ErrStdinEnded
		}
		return spdyData(uint32(id), data), nil
	case *websocket.FrameReader:
		if !r.ClientChannelOpen(0) {
			return nil, ErrStdinEnded
		}
		var key [4]byte
		binary.NativeEndian.PutUint32(key[:], rand.Uint32())
		return websocket.ClientFrame(0, data, key), nil
	}
	return nil, ErrNotJoinable
}

// spdyData is a SPDY DATA frame of stream id, without flags, carrying data.
func spdyData(id uint32, data []byte) []byte {
	f := make([]byte, wirespdy.FrameHeaderLen+len(data))
	binary.BigEndian.PutUint32(f[0:4], id&0x7fffffff)
	binary.BigEndian.PutUint32(f[4:8], uint32(len(data)))
	copy(f[wirespdy.FrameHeaderLen:], data)
	return f
}

// notifier puts exec-proxy's stdout frames between a SPDY session's frames to the client.
type notifier struct {
	mu      sync.Mutex // the writes to the client, and the frame reader's reading of them
	cut     wirespdy.FrameCutter
	between bool     // the frames written so far end on a frame boundary
	held    [][]byte // notices waiting for a boundary
}

// Noticeable tells whether Notice can reach the client: a bandwidth-limited session's frames go
// through its queue, which has no place between them.
// Read it once Upgraded: the upgrade's answer decides the frames.
func (c *Conn) Noticeable() bool { return c.frames != nil || c.notes != nil }

// Upgraded tells whether the answer to the upgrade reached the client.
func (c *Conn) Upgraded() bool { return c.upgraded.Load() }

// Notice writes text to the client as stdout, in a frame put between the kubelet's: a line it sees
// on its terminal. The frame reader reads it too (watchers and the recording see it).
func (c *Conn) Notice(text []byte) error {
	switch {
	case !c.upgraded.Load():
		return ErrNotJoinable
	case c.frames != nil: // WebSocket, v4 or v5 (the session refuses joins on others)
		b := make([]byte, websocket.MaxHeader+1+len(text))
		copy(b[websocket.MaxHeader+1:], text)
		return c.WriteFrame(websocket.ChannelFrame(b, 1, len(text)))
	case c.notes == nil:
		return ErrNotJoinable
	}
	r, ok := c.s.FrameReader().(*wirespdy.FrameReader)
	if !ok {
		return ErrNotJoinable
	}
	id, _, open := r.Open("stdout")
	if !open {
		return ErrNoStdout
	}
	frame := spdyData(uint32(id), text)
	c.notes.mu.Lock()
	defer c.notes.mu.Unlock()
	if c.notes.hold(frame) {
		return nil
	}
	return c.sendNotice(frame)
}

// hold holds a notice's frame until the frames sent end on a boundary, unless they do; mu is held.
func (n *notifier) hold(frame []byte) bool {
	if n.between {
		return false
	}
	if len(n.held) < maxHeldNotices {
		n.held = append(n.held, frame)
	}
	return true
}

// sent follows frames, just sent; it returns the notices held that may follow them. mu is held.
func (n *notifier) sent(frames []byte) [][]byte {
	n.between = n.cut.Follow(frames)
	if !n.between {
		return nil
	}
	due := n.held
	n.held = nil
	return due
}

// sendNoted sends p to the client, of which frames are the frames (read by the frame reader unless
// read already), then the notices held for a boundary, if p ends on one.
func (c *Conn) sendNoted(p, frames []byte, read bool) (int, error) {
	c.notes.mu.Lock()
	defer c.notes.mu.Unlock()
	if !read {
		c.s.FrameReader().ToClient(frames)
	}
	n, err := c.send(p)
	for _, notice := range c.notes.sent(frames) {
		if err == nil {
			err = c.sendNotice(notice)
		}
	}
	return n, err
}

// sendNotice sends a notice's frame; c.notes.mu is held.
func (c *Conn) sendNotice(frame []byte) error {
	c.s.FrameReader().ToClient(frame)
	_, err := c.send(frame)
	return err
}
