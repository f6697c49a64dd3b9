package proxy

import (
	"encoding/binary"
	"errors"
	"io"
	"time"

	"github.com/moby/spdystream/spdy"
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

// wsMaxHeader is the longest header of a frame exec-proxy writes: unmasked, with a 64-bit length.
const wsMaxHeader = 10

// directChunk is the most payload one directly written WebSocket frame carries.
const directChunk = frameBufferSize - wsMaxHeader - 1

// readDirect is Read of a leg whose client takes stdout and stderr directly (see above).
func (l *kubeletLeg) readDirect(p []byte) (int, error) {
	for {
		switch {
		case len(l.owed) > 0:
			n := copy(p, l.owed)
			l.owed = l.owed[n:]
			return n, nil
		case l.readErr != nil:
			return 0, l.readErr
		case l.passBody > 0:
			n, err := l.in.Read(p[:min(len(p), l.passBody)])
			l.passBody -= n
			l.skim.toClient(p[:n])
			return n, err
		}
		n, err := io.ReadFull(l.in, l.hdr[:])
		l.skim.toClient(l.hdr[:n])
		if err != nil {
			l.owed, l.readErr = l.hdr[:n], endOfStream(err)
			continue
		}
		body := int(l.hdr[5])<<16 | int(l.hdr[6])<<8 | int(l.hdr[7])
		ch, direct := l.directChannel()
		if !direct {
			l.owed, l.passBody = l.hdr[:], body
			continue
		}
		if err := l.writeDirect(ch, body); err != nil {
			l.readErr = err
			continue
		}
		if spdy.DataFlags(l.hdr[4])&spdy.DataFlagFin != 0 { // the translator still learns that the stream ended
			l.hdr[5], l.hdr[6], l.hdr[7] = 0, 0, 0
			l.owed = l.hdr[:]
		}
	}
}

// directChannel tells whether the frame whose header was read last is a DATA frame of a stream
// written directly, and on which channel.
func (l *kubeletLeg) directChannel() (byte, bool) {
	if l.hdr[0]&0x80 != 0 { // a control frame
		return 0, false
	}
	ch, ok := directChannels[l.types.streamType(spdy.StreamId(binary.BigEndian.Uint32(l.hdr[:4])))]
	return ch, ok
}

// writeDirect reads the n bytes of a DATA frame's payload and writes them to the client on
// channel ch, in frames of at most directChunk bytes.
func (l *kubeletLeg) writeDirect(ch byte, n int) error {
	buf := frameBuffers.Get().(*[]byte)
	defer frameBuffers.Put(buf) // still empty: only its capacity is used
	b := (*buf)[:cap(*buf)]
	for n > 0 {
		payload := b[wsMaxHeader+1 : wsMaxHeader+1+min(n, directChunk)]
		m, err := io.ReadFull(l.in, payload)
		l.skim.toClient(payload[:m])
		n -= m
		if m > 0 {
			if werr := l.direct.writeFrame(channelFrame(b, ch, m)); werr != nil {
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

// channelFrame puts a binary WebSocket frame's header and channel byte ch before the n bytes of
// payload at b[wsMaxHeader+1:], and returns the frame: what x/net/websocket writes, unmasked.
func channelFrame(b []byte, ch byte, n int) []byte {
	b[wsMaxHeader] = ch
	size := n + 1
	var start int
	switch {
	case size <= 125:
		start = wsMaxHeader - 2
		b[start+1] = byte(size)
	case size <= 0xffff:
		start = wsMaxHeader - 4
		b[start+1] = 126
		binary.BigEndian.PutUint16(b[start+2:], uint16(size))
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(size))
	}
	b[start] = 0x82 // FIN, binary
	return b[start : wsMaxHeader+1+n]
}

// writeFrame writes a whole WebSocket frame to the client between the translator's frames: one
// the translator started is finished first.
func (c *sessionConn) writeFrame(frame []byte) error {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	for c.frames.partial && c.ferr == nil {
		c.fcond.Wait()
	}
	if c.ferr != nil {
		return c.ferr
	}
	c.s.skimmer().toClient(frame)
	n, err := writeRecords(c.Conn, frame)
	c.s.countOut(n)
	if err != nil {
		c.ferr = err
		return err
	}
	c.renewDeadline()
	return nil
}

// writeFrames is write of the translator's frames once the upgrade is answered.
func (c *sessionConn) writeFrames(p []byte) (int, error) {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	c.s.skimmer().toClient(p)
	err := c.frames.Write(p)
	if err != nil && c.ferr == nil {
		c.ferr = err
	}
	if !c.frames.partial || err != nil {
		c.fcond.Broadcast()
	}
	if err != nil {
		return 0, err
	}
	c.s.countOut(len(p))
	return len(p), nil
}

// closeFrames wakes a direct writer waiting for a frame the translator will not finish now.
func (c *sessionConn) closeFrames() {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	if c.ferr == nil {
		c.ferr = errClosedConn
	}
	c.fcond.Broadcast()
}

var errClosedConn = errors.New("use of closed network connection")

// SetDeadline is wsstream's idle timeout, renewed at each frame it reads or writes; the frames
// written directly renew it as well (see renewDeadline).
func (c *sessionConn) SetDeadline(t time.Time) error {
	if !t.IsZero() {
		c.idle.Store(int64(time.Until(t)))
	}
	return c.Conn.SetDeadline(t)
}

// renewDeadline renews the idle timeout wsstream set, at most once a second. Called with fmu held.
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
