package clientconn

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
	"github.com/exec-proxy/exec-proxy/pkg/wire/tlsrecord"
	"github.com/exec-proxy/exec-proxy/pkg/wire/websocket"
)

// frameWriter writes a WebSocket session's frames to the client whole: upstream's stream
// translator writes each through the 4 KiB buffer it is handed at the hijack, in two writes or
// more. The kubelet side writes stdout and stderr frames itself (see package kubeletconn), between
// the translator's: interleaved orders the two.
type frameWriter struct {
	raw         net.Conn
	w           *wire.FrameWriter
	interleaved wire.Interleaved
	// idle is wsstream's idle timeout, in nanoseconds; renewed is when a direct frame last renewed it.
	idle    atomic.Int64
	renewed int64
}

func newFrameWriter(raw net.Conn) *frameWriter {
	return &frameWriter{raw: raw, w: &wire.FrameWriter{W: tlsrecord.Writer{Conn: raw}, Cut: &websocket.FrameCutter{}}}
}

// follow reads the frames written with the answer to the upgrade: the frame writer takes up after them.
func (f *frameWriter) follow(p []byte) { f.w.Cut.Follow(p) }

func (f *frameWriter) end() { f.interleaved.End() }

// setIdle notes wsstream's idle timeout, d from now.
func (f *frameWriter) setIdle(d time.Duration) { f.idle.Store(int64(d)) }

// renew is the deadline that renews the idle timeout at now, at most once a second; ok is false
// when there is none to renew, or it was renewed less than a second ago. Only the kubelet side's
// reader calls it.
func (f *frameWriter) renew(now time.Time) (deadline time.Time, ok bool) {
	idle := f.idle.Load()
	if idle <= 0 || now.UnixNano()-f.renewed < int64(time.Second) {
		return time.Time{}, false
	}
	f.renewed = now.UnixNano()
	return now.Add(time.Duration(idle)), true
}

// WriteFrame writes a whole WebSocket frame to the client between the translator's frames.
func (c *Conn) WriteFrame(frame []byte) error {
	n, err := c.frames.interleaved.WriteWhole(c.frames.w, frame, c.s.FrameReader().ToClient)
	c.s.CountOut(n)
	if err == nil {
		c.renewDeadline()
	}
	return err
}

// writeFrames is write of the translator's frames once the upgrade is answered.
func (c *Conn) writeFrames(p []byte) (int, error) {
	if err := c.frames.interleaved.WritePieces(c.frames.w, p, c.s.FrameReader().ToClient, nil); err != nil {
		return 0, err
	}
	c.s.CountOut(len(p))
	return len(p), nil
}

// SetDeadline is wsstream's idle timeout, renewed at each frame it reads or writes; the frames
// written directly renew it as well (see renewDeadline).
func (c *Conn) SetDeadline(t time.Time) error {
	if !t.IsZero() && c.frames != nil {
		c.frames.setIdle(time.Until(t))
	}
	err := c.Conn.SetDeadline(t)
	c.keepWake(t)
	return err
}

// renewDeadline renews the idle timeout wsstream set (see frameWriter.renew).
func (c *Conn) renewDeadline() {
	if deadline, ok := c.frames.renew(time.Now()); ok {
		_ = c.Conn.SetDeadline(deadline)
		c.keepWake(deadline)
	}
}
