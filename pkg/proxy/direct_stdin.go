package proxy

import (
	"encoding/binary"
	"io"
	"sync"

	"github.com/moby/spdystream/spdy"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
	wirespdy "github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
	"github.com/exec-proxy/exec-proxy/pkg/wire/websocket"
)

// The other way, x/net/websocket reads each of the client's stdin frames into a slice grown as it
// goes, unmasking it a byte at a time, and wsstream hands it through a pipe to the translator's copy
// into spdystream: over half of exec-proxy's CPU in an upload was that and the garbage it left. So
// a WebSocket session's stdin messages are written to the kubelet leg as stdin DATA frames, in the
// client's order; wsstream reads the client's other frames as they came, the stdin's close signal
// among them, after the stdin before it.
// Not from the first stdin message: that one goes through the translator. The kubelet reads stdin
// only once all the streams it expects are open, and stdin frames it does not read stop it reading
// any frame (spdystream's queues fill), so stdin written before the translator opened them all
// would stop the session. The translator copies stdin only once it has, so when its copy of the
// first message reached the kubelet, the rest can follow directly.

// stdinRoute is where a session's stdin goes directly: the kubelet leg, once the translator's
// SYN_STREAM for stdin went to the kubelet.
type stdinRoute struct {
	mu   sync.Mutex
	cond sync.Cond
	leg  *kubeletLeg
	id   spdy.StreamId
	done bool // stdin goes through the translator: no leg will open a stdin stream
}

func newStdinRoute() *stdinRoute {
	r := &stdinRoute{}
	r.cond.L = &r.mu
	return r
}

// wait returns the leg and stream stdin goes to, or nil once there will be none.
func (r *stdinRoute) wait() (*kubeletLeg, spdy.StreamId) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.leg == nil && !r.done {
		r.cond.Wait()
	}
	return r.leg, r.id
}

func (r *stdinRoute) opened(l *kubeletLeg, id spdy.StreamId) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.leg == nil && !r.done {
		r.leg, r.id = l, id
		r.cond.Broadcast()
	}
}

func (r *stdinRoute) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = true
	r.cond.Broadcast()
}

// stdinFilter is Read of a client connection whose stdin goes to the kubelet directly.
type stdinFilter struct {
	c        *sessionConn
	route    *stdinRoute
	hdr      [15]byte // a frame header, and a message's channel byte
	pass     passOn   // what wsstream is still to read of the frame
	direct   bool     // the current message is stdin's, written directly
	stdinMsg bool     // the current message is stdin's, through the translator
	passed   int64    // stdin payload that went through the translator
	leg      *kubeletLeg
	id       spdy.StreamId
	through  bool // stdin goes through the translator, for good
}

func (f *stdinFilter) read(p []byte) (int, error) {
	for {
		if n, served, err := f.pass.read(p, f.c.rawRead); served {
			return n, err
		}
		f.pass.err = f.next()
	}
}

// next reads the next frame's header: the frames of a stdin message are written to the kubelet,
// the others left for wsstream.
func (f *stdinFilter) next() error {
	in := rawReader{f.c}
	n, err := io.ReadFull(in, f.hdr[:2])
	if err == nil {
		var m int
		m, err = io.ReadFull(in, f.hdr[2:websocket.HeaderLen(f.hdr[1])])
		n += m
	}
	if err != nil {
		f.pass.owed = f.hdr[:n]
		return err
	}
	length, off := websocket.PayloadLen(f.hdr[:n])
	var mask [4]byte
	copy(mask[:], f.hdr[off:n]) // the frame reader ends a session whose client does not mask
	// x/net/websocket reads every data frame as a message of its own, continuation or not, text
	// or binary: each begins with its channel (the frame reader refuses the other opcodes).
	f.direct, f.stdinMsg = false, false
	if opcode := f.hdr[0] & 0x0f; opcode > 2 || length == 0 {
		f.passFrame(n, length)
		return nil
	}
	if _, err := io.ReadFull(in, f.hdr[n:n+1]); err != nil {
		f.pass.owed = f.hdr[:n]
		return err
	}
	stdin := f.hdr[n]^mask[0] == 0
	f.direct = stdin && f.stdinLeg()
	if f.direct {
		return f.writeStdin(length-1, mask, 1)
	}
	f.stdinMsg = stdin
	f.passFrame(n+1, length-1)
	return nil
}

// passFrame leaves the frame whose first n bytes were read, with length bytes of payload still to
// come, for wsstream to read.
func (f *stdinFilter) passFrame(n int, length uint64) {
	f.pass.owed, f.pass.body = f.hdr[:n], length
	if f.stdinMsg {
		f.passed += int64(length)
	}
}

// stdinLeg tells whether a stdin message goes to the kubelet directly: not the first (see above);
// the next, once the translator's copy of the stdin before it reached the kubelet.
func (f *stdinFilter) stdinLeg() bool {
	switch {
	case f.leg != nil:
		return true
	case f.through || f.passed == 0:
		return false
	}
	leg, id := f.route.wait()
	if leg == nil || !leg.waitStdin(f.passed) {
		f.through = true
		return false
	}
	f.leg, f.id = leg, id
	return true
}

// writeStdin reads n bytes of stdin payload, which starts at position pos of its frame, and writes
// them to the kubelet. Once the kubelet's connection failed they go nowhere, as the translator's
// copy would have left them; the session ends with that connection.
func (f *stdinFilter) writeStdin(n uint64, mask [4]byte, pos int) error {
	buf := wire.FrameBuffers.Get().(*[]byte)
	defer wire.FrameBuffers.Put(buf) // still empty: only its capacity is used
	b := (*buf)[:cap(*buf)]
	for n > 0 {
		payload := b[wirespdy.FrameHeaderLen : wirespdy.FrameHeaderLen+int(min(n, uint64(len(b)-wirespdy.FrameHeaderLen)))]
		m, err := io.ReadFull(rawReader{f.c}, payload)
		websocket.Unmask(payload[:m], mask, pos)
		pos += m
		n -= uint64(m)
		if m > 0 {
			binary.BigEndian.PutUint32(b[0:4], uint32(f.id))
			binary.BigEndian.PutUint32(b[4:8], uint32(m)) // no flags: the translator ends the stream
			_ = f.leg.writeData(b[:wirespdy.FrameHeaderLen+m])
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// rawReader reads the client connection as it came (counted, read by the frame reader, throttled).
type rawReader struct{ c *sessionConn }

func (r rawReader) Read(p []byte) (int, error) { return r.c.rawRead(p) }

// writeData writes a DATA frame to the kubelet between the translator's frames.
func (l *kubeletLeg) writeData(frame []byte) error {
	_, err := l.lanes.writeWhole(&l.frames, frame, l.reader.FromClient)
	return err
}

// writeFrames is Write of the translator's frames once its request went to the kubelet.
func (l *kubeletLeg) writeFrames(p []byte) (int, error) {
	return len(p), l.lanes.writePieces(&l.frames, p, l.reader.FromClient, l.noteStdin)
}

// noteStdin tells the stdin route once the translator's SYN_STREAM for stdin went to the kubelet.
func (l *kubeletLeg) noteStdin() {
	if l.route == nil || l.stdinOpened || l.types == nil {
		return
	}
	if id, ok := l.types.StreamID("stdin"); ok {
		l.stdinOpened = true
		l.route.opened(l, id)
	}
}

// waitStdin waits until the translator wrote n bytes of stdin to the kubelet; false if it will not.
func (l *kubeletLeg) waitStdin(n int64) bool {
	return l.lanes.waitFor(func() bool { return l.leg.streamBytes("stdin") >= n })
}
