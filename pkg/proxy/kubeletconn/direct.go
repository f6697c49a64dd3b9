package kubeletconn

import (
	"encoding/binary"
	"errors"
	"io"

	"github.com/moby/spdystream/spdy"

	"github.com/exec-proxy/exec-proxy/pkg/proxy/clientconn"
	"github.com/exec-proxy/exec-proxy/pkg/wire"
	wirespdy "github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
	"github.com/exec-proxy/exec-proxy/pkg/wire/websocket"
)

// Over WebSocket, upstream's stream translator moves each of the kubelet's stdout and stderr DATA
// frames through two fresh buffers as large as the frame: spdystream reads the frame into one,
// wsstream copies it behind its channel byte into another. In a download that is garbage at twice
// the rate of the data, and collecting it took about half of exec-proxy's CPU. So the translator's
// connection writes that payload to the client itself, as the WebSocket frames the translator would have
// written, in the order the kubelet sent it. The translator is handed the rest as it came: control
// frames, the error stream, and each stream's end (its FIN, as an empty DATA frame).

// directChannels are the WebSocket channels of the streams written directly: the translator
// speaks v5.channel.k8s.io alone, in binary, stdout on channel 1 and stderr on 2.
var directChannels = map[string]byte{"stdout": 1, "stderr": 2}

// directChunk is the most payload one directly written WebSocket frame carries.
const directChunk = wire.FrameBufferSize - websocket.MaxHeader - 1

// directReader is what a translator's connection needs to write stdout and stderr directly.
type directReader struct {
	client *clientconn.Conn
	hdr    [wirespdy.FrameHeaderLen]byte // the header of the kubelet's frame being read
	pass   wire.Pending                  // what the translator is still to read of it
}

// readDirect is Read of a translator's connection whose client takes stdout and stderr directly (see above).
func (l *translatorConn) readDirect(p []byte) (int, error) {
	for {
		if n, served, err := l.direct.pass.Read(p, l.readKubelet); served {
			return n, err
		}
		n, err := io.ReadFull(l.hs.in, l.direct.hdr[:])
		l.reader.ToClient(l.direct.hdr[:n])
		if err != nil {
			l.direct.pass.Owed, l.direct.pass.Err = l.direct.hdr[:n], endOfStream(err)
			continue
		}
		body := wirespdy.BodyLen(l.direct.hdr[:])
		ch, direct := l.directChannel()
		if !direct {
			l.direct.pass.Owed, l.direct.pass.Body = l.direct.hdr[:], uint64(body)
			continue
		}
		if err := l.writeDirect(ch, body); err != nil {
			l.direct.pass.Err = err
			continue
		}
		if spdy.DataFlags(l.direct.hdr[4])&spdy.DataFlagFin != 0 { // the translator still learns that the stream ended
			l.direct.hdr[5], l.direct.hdr[6], l.direct.hdr[7] = 0, 0, 0
			l.direct.pass.Owed = l.direct.hdr[:]
		}
	}
}

// directChannel tells whether the frame whose header was read last is a DATA frame of a stream
// written directly, and on which channel.
func (l *translatorConn) directChannel() (byte, bool) {
	if l.direct.hdr[0]&0x80 != 0 { // a control frame
		return 0, false
	}
	ch, ok := directChannels[l.streams.StreamType(spdy.StreamId(binary.BigEndian.Uint32(l.direct.hdr[:4])))]
	return ch, ok
}

// writeDirect reads the n bytes of a DATA frame's payload and writes them to the client on
// channel ch, in frames of at most directChunk bytes.
func (l *translatorConn) writeDirect(ch byte, n int) error {
	buf := wire.FrameBuffers.Get().(*[]byte)
	defer wire.FrameBuffers.Put(buf) // still empty: only its capacity is used
	b := (*buf)[:cap(*buf)]
	for n > 0 {
		payload := b[websocket.MaxHeader+1 : websocket.MaxHeader+1+min(n, directChunk)]
		m, err := io.ReadFull(l.hs.in, payload)
		l.reader.ToClient(payload[:m])
		n -= m
		if m > 0 {
			if werr := l.direct.client.WriteFrame(websocket.ChannelFrame(b, ch, m)); werr != nil {
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
