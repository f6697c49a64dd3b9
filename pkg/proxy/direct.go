package proxy

import (
	"encoding/binary"
	"errors"
	"io"
	"time"

	"github.com/moby/spdystream/spdy"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
	wirespdy "github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
	"github.com/exec-proxy/exec-proxy/pkg/wire/websocket"
)

// Over WebSocket, upstream's stream translator moves each of the kubelet's stdout and stderr DATA
// frames through two fresh buffers as large as the frame: spdystream reads the frame into one,
// wsstream copies it behind its channel byte into another. In a download that is garbage at twice
// the rate of the data, and collecting it took about half of exec-proxy's CPU. So the kubelet leg
// writes that payload to the client itself, as the WebSocket frames the translator would have
// written, in the order the kubelet sent it. The translator is handed the rest as it came: control
// frames, the error stream, and each stream's end (its FIN, as an empty DATA frame).

// directChannels are the WebSocket channels of the streams written directly: the translator
// speaks v5.channel.k8s.io alone, in binary, stdout on channel 1 and stderr on 2.
var directChannels = map[string]byte{"stdout": 1, "stderr": 2}

// directChunk is the most payload one directly written WebSocket frame carries.
const directChunk = wire.FrameBufferSize - websocket.MaxHeader - 1

// passOn is what a reader is still to be handed of a byte stream some frames are taken out of:
// the start of a frame read to decide on it, the rest of that frame as it comes, then the error
// that ended the stream.
type passOn struct {
	owed []byte
	body uint64
	err  error
}

// read hands p what is owed, or the next bytes of the frame passed on, read with src; served is
// false when the next frame is to be read.
func (q *passOn) read(p []byte, src func([]byte) (int, error)) (n int, served bool, err error) {
	switch {
	case len(q.owed) > 0:
		n = copy(p, q.owed)
		q.owed = q.owed[n:]
		return n, true, nil
	case q.err != nil:
		return 0, true, q.err
	case q.body > 0:
		n, err = src(p[:min(uint64(len(p)), q.body)])
		q.body -= uint64(n)
		return n, true, err
	}
	return 0, false, nil
}

// readDirect is Read of a leg whose client takes stdout and stderr directly (see above).
func (l *kubeletLeg) readDirect(p []byte) (int, error) {
	for {
		if n, served, err := l.pass.read(p, l.readKubelet); served {
			return n, err
		}
		n, err := io.ReadFull(l.in, l.hdr[:])
		l.reader.ToClient(l.hdr[:n])
		if err != nil {
			l.pass.owed, l.pass.err = l.hdr[:n], endOfStream(err)
			continue
		}
		body := wirespdy.BodyLen(l.hdr[:])
		ch, direct := l.directChannel()
		if !direct {
			l.pass.owed, l.pass.body = l.hdr[:], uint64(body)
			continue
		}
		if err := l.writeDirect(ch, body); err != nil {
			l.pass.err = err
			continue
		}
		if spdy.DataFlags(l.hdr[4])&spdy.DataFlagFin != 0 { // the translator still learns that the stream ended
			l.hdr[5], l.hdr[6], l.hdr[7] = 0, 0, 0
			l.pass.owed = l.hdr[:]
		}
	}
}

// readKubelet reads the kubelet's bytes as they come, for the translator.
func (l *kubeletLeg) readKubelet(p []byte) (int, error) {
	n, err := l.in.Read(p)
	l.reader.ToClient(p[:n])
	return n, err
}

// directChannel tells whether the frame whose header was read last is a DATA frame of a stream
// written directly, and on which channel.
func (l *kubeletLeg) directChannel() (byte, bool) {
	if l.hdr[0]&0x80 != 0 { // a control frame
		return 0, false
	}
	ch, ok := directChannels[l.types.StreamType(spdy.StreamId(binary.BigEndian.Uint32(l.hdr[:4])))]
	return ch, ok
}

// writeDirect reads the n bytes of a DATA frame's payload and writes them to the client on
// channel ch, in frames of at most directChunk bytes.
func (l *kubeletLeg) writeDirect(ch byte, n int) error {
	buf := wire.FrameBuffers.Get().(*[]byte)
	defer wire.FrameBuffers.Put(buf) // still empty: only its capacity is used
	b := (*buf)[:cap(*buf)]
	for n > 0 {
		payload := b[websocket.MaxHeader+1 : websocket.MaxHeader+1+min(n, directChunk)]
		m, err := io.ReadFull(l.in, payload)
		l.reader.ToClient(payload[:m])
		n -= m
		if m > 0 {
			if werr := l.direct.writeFrame(websocket.ChannelFrame(b, ch, m)); werr != nil {
				return werr
			}
		}
		if err != nil {
			return endOfStream(err)
		}
	}
	return nil
}

// endOfStream is err as the translator would have met it: a kubelet gone mid-frame is gone.
func endOfStream(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return io.EOF
	}
	return err
}

// writeFrame writes a whole WebSocket frame to the client between the translator's frames.
func (c *sessionConn) writeFrame(frame []byte) error {
	n, err := c.lanes.writeWhole(c.frames, frame, c.s.frameReader().ToClient)
	c.s.countOut(n)
	if err == nil {
		c.renewDeadline()
	}
	return err
}

// writeFrames is write of the translator's frames once the upgrade is answered.
func (c *sessionConn) writeFrames(p []byte) (int, error) {
	if err := c.lanes.writePieces(c.frames, p, c.s.frameReader().ToClient, nil); err != nil {
		return 0, err
	}
	c.s.countOut(len(p))
	return len(p), nil
}

// SetDeadline is wsstream's idle timeout, renewed at each frame it reads or writes; the frames
// written directly renew it as well (see renewDeadline).
func (c *sessionConn) SetDeadline(t time.Time) error {
	if !t.IsZero() {
		c.idle.Store(int64(time.Until(t)))
	}
	return c.Conn.SetDeadline(t)
}

// renewDeadline renews the idle timeout wsstream set, at most once a second. Only the kubelet
// leg's reader calls it.
func (c *sessionConn) renewDeadline() {
	idle := c.idle.Load()
	if idle <= 0 {
		return
	}
	if now := nowNano(); now-c.renewed >= int64(time.Second) {
		c.renewed = now
		_ = c.Conn.SetDeadline(time.Unix(0, now+idle))
	}
}
