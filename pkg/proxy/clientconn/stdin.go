package clientconn

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
// a WebSocket session's stdin messages are written to the translator's connection to the kubelet
// as stdin DATA frames, in the client's order; wsstream reads the client's other frames as they
// came, the stdin's close signal among them, after the stdin before it.
// Not from the first stdin message: that one goes through the translator. The kubelet reads stdin
// only once all the streams it expects are open, and stdin frames it does not read stop it reading
// any frame (spdystream's queues fill), so stdin written before the translator opened them all
// would stop the session. The translator copies stdin only once it has, so when its copy of the
// first message reached the kubelet, the rest can follow directly.

// StdinWriter is the translator's connection to the kubelet, as the client's stdin sees it.
type StdinWriter interface {
	// WriteStdin writes a stdin DATA frame to the kubelet between the translator's frames.
	WriteStdin(frame []byte) error
	// WaitStdin waits until the translator wrote n bytes of stdin to the kubelet; false if it will not.
	WaitStdin(n int64) bool
}

// StdinRoute is where a session's stdin goes directly: the translator's connection to the
// kubelet, once the translator's SYN_STREAM for stdin went to the kubelet.
type StdinRoute struct {
	mu     sync.Mutex
	cond   sync.Cond
	writer StdinWriter
	id     spdy.StreamId
	done   bool // stdin goes through the translator: no translator connection will open a stdin stream
}

func newStdinRoute() *StdinRoute {
	r := &StdinRoute{}
	r.cond.L = &r.mu
	return r
}

// wait returns the writer and stream stdin goes to, or nil once there will be none.
func (r *StdinRoute) wait() (StdinWriter, spdy.StreamId) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.writer == nil && !r.done {
		r.cond.Wait()
	}
	return r.writer, r.id
}

// Opened: the translator opened stdin as stream id on l.
func (r *StdinRoute) Opened(l StdinWriter, id spdy.StreamId) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.writer == nil && !r.done {
		r.writer, r.id = l, id
		r.cond.Broadcast()
	}
}

// End: no stdin stream will be opened on a translator's connection; stdin goes through the translator.
func (r *StdinRoute) End() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = true
	r.cond.Broadcast()
}

// stdinFilter is Read of a client connection whose stdin goes to the kubelet directly.
type stdinFilter struct {
	c        *Conn
	route    *StdinRoute
	hdr      [15]byte     // a frame header, and a message's channel byte
	pass     wire.Pending // what wsstream is still to read of the frame
	direct   bool         // the current message is stdin's, written directly
	stdinMsg bool         // the current message is stdin's, through the translator
	passed   int64        // stdin payload that went through the translator
	writer   StdinWriter
	id       spdy.StreamId
	through  bool // stdin goes through the translator, for good
}

func (f *stdinFilter) read(p []byte) (int, error) {
	for {
		if n, served, err := f.pass.Read(p, f.c.rawRead); served {
			return n, err
		}
		f.pass.Err = f.next()
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
		f.pass.Owed = f.hdr[:n]
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
		f.pass.Owed = f.hdr[:n]
		return err
	}
	stdin := f.hdr[n]^mask[0] == 0
	f.direct = stdin && f.directly()
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
	f.pass.Owed, f.pass.Body = f.hdr[:n], length
	if f.stdinMsg {
		f.passed += int64(length)
	}
}

// directly tells whether a stdin message goes to the kubelet directly: not the first (see above);
// the next, once the translator's copy of the stdin before it reached the kubelet.
func (f *stdinFilter) directly() bool {
	switch {
	case f.writer != nil:
		return true
	case f.through || f.passed == 0:
		return false
	}
	writer, id := f.route.wait()
	if writer == nil || !writer.WaitStdin(f.passed) {
		f.through = true
		return false
	}
	f.writer, f.id = writer, id
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
			_ = f.writer.WriteStdin(b[:wirespdy.FrameHeaderLen+m])
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// rawReader reads the client connection as it came (counted, read by the frame reader, throttled).
type rawReader struct{ c *Conn }

func (r rawReader) Read(p []byte) (int, error) { return r.c.rawRead(p) }
