// Package websocket reads WebSocket frames (RFC 6455) as they pass, both directions, as
// x/net/websocket and wsstream read them (the port-forward tunnel's with package spdy, as the
// stream translator reads it); follows frame boundaries (FrameCutter) for the frame writer; and
// builds and unmasks the frames exec-proxy writes itself. It reports to a wire.Observer.
package websocket

import (
	"encoding/base64"
	"fmt"
	"strings"
	"sync"

	"k8s.io/client-go/tools/remotecommand"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
	"github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
)

const (
	// maxClientFrame bounds a client's WebSocket frame. x/net/websocket, under the translator,
	// reads each frame whole into memory, up to its DefaultMaxPayloadBytes of 32 MiB: one user at
	// the session cap could pin GiBs. kubectl sends stdin in frames of at most 32 KiB.
	maxClientFrame = 256 << 10
	// maxBase64Message bounds a message of the base64 protocols kept until it is whole: wsstream
	// decodes each whole, and drops one that is not base64. The kubelet's are under 44 KiB.
	maxBase64Message = 256 << 10
	// channelClose is v5's close signal: 255, then the channel to close.
	channelClose = 255
)

// FrameReader follows WebSocket frames (RFC 6455) in both directions, as x/net/websocket and
// wsstream read them: every data frame is a message of its own, FIN or not and continuation or
// not (Codec.Receive reads one frame), whose first byte is its channel (an ASCII digit in the
// base64 protocols). Of the client's messages only those on channels the kubelet reads count.
type FrameReader struct {
	o          wire.Observer
	shape      wire.Shape
	base64, v5 bool
	// clientMu orders the client's frames with close: the translator's read of the client may
	// still be returning as the session ends.
	clientMu       sync.Mutex
	client, server wsReader
	// tunnel, for port-forward over WebSocket, reads the SPDY stream the messages carry.
	tunnel *spdy.FrameReader
	// resize reads the client's resize stream; only the client's reader feeds it.
	resize wire.ResizeReader
}

// NewFrameReader reads a session over the channel protocol protocol (*channel.k8s.io) whose
// request asked for shape, reporting to o.
func NewFrameReader(protocol string, shape wire.Shape, o wire.Observer) *FrameReader {
	s := &FrameReader{o: o, shape: shape, base64: strings.Contains(protocol, "base64"), v5: protocol == "v5.channel.k8s.io"}
	s.client.s, s.server.s = s, s
	s.client.fromClient = true
	return s
}

func (s *FrameReader) FromClient(p []byte) {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	s.client.feed(p)
}

func (s *FrameReader) ToClient(p []byte) { s.server.feed(p) }

func (s *FrameReader) Close() {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	s.client.cutShort()
	if s.tunnel != nil {
		s.tunnel.Close()
	}
}

// cutShort reads a base64 message the connection's end cut short as x/net/websocket reads it: a
// message (Codec.Receive's io.ReadAll stops at EOF without an error). Raw messages were read as
// they came; the session is over, so nothing here is a protocol error any more.
func (r *wsReader) cutShort() {
	if r.stopped || r.remaining == 0 || r.control || r.raw != nil || !r.s.base64 || r.stream == "" {
		return
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(r.msg)))
	n, err := base64.StdEncoding.Decode(out, r.msg)
	switch {
	case err != nil:
	case r.stream == "resize":
		_ = r.resized(out[:n])
	case r.stream != "error":
		r.s.o.Payload(r.stream, n)
		r.s.o.Data(r.stream, out[:n])
	}
	r.stopped = true
}

// NewTunnelReader reads port-forward tunnelled over WebSocket: the binary messages carry a
// SPDY connection's bytes, without channel bytes. The stream translator reads them with
// gorilla/websocket (client-go's tunneling connection), whose rules the client's frames must keep.
// shape is what the request asked for; o hears what the SPDY frames tell.
func NewTunnelReader(shape wire.Shape, o wire.Observer) *FrameReader {
	s := &FrameReader{o: o, shape: shape, tunnel: spdy.NewFrameReader("", shape, o)}
	s.client.s, s.server.s = s, s
	s.client.fromClient = true
	s.client.raw, s.server.raw = s.tunnel.FromClient, s.tunnel.ToClient
	return s
}

// channel names the stream a message on channel ch is for, as the kubelet's (or the translator's)
// wsstream channels have it: "" for one that is not read (the kubelet ignores the client's
// messages on its write-only channels, and on stdin when stdin was not asked for).
func (s *FrameReader) channel(ch byte, fromClient bool) string {
	shape := s.shape
	if shape.PortForward { // two channels for each port of the query: data, then error
		switch {
		case int(ch) >= 2*len(shape.Ports):
			return ""
		case ch%2 == 0:
			return "data"
		case fromClient:
			return ""
		}
		return "error"
	}
	name := channels[ch]
	switch {
	case !fromClient:
		if name == "stdin" || name == "resize" {
			return ""
		}
	case int(ch) < len(s.client.closed) && s.client.closed[ch]:
		return "" // wsstream's pipe for the channel is closed: it drops what comes
	case name == "stdin" && shape.Known && !shape.Stdin:
		return ""
	case name != "stdin" && name != "resize":
		return ""
	}
	return name
}

// wsReader is one direction's parser state; only one goroutine feeds it.
type wsReader struct {
	s         *FrameReader
	hdr       []byte
	remaining uint64 // payload bytes left in the current frame
	length    uint64 // the current frame's payload length
	pos       uint64 // payload bytes read of the current frame, for unmasking
	mask      []byte
	control   bool
	stream    string       // of the current message
	channelAt bool         // the next payload byte is the channel
	closing   bool         // the current message is v5's close signal
	msg       []byte       // the current message, where it is read whole
	raw       func([]byte) // when set, payload goes here unmasked, with no channel byte
	inMessage bool         // tunnel: a fragmented message goes on (gorilla's rules)
	// closed: the channels the client's v5 close signal closed; wsstream drops what comes on them.
	closed [8]bool
	// fromClient: a client's frame must be as the server reads it; one that is not ends the session.
	fromClient bool
	stopped    bool
}

func (r *wsReader) feed(p []byte) {
	for len(p) > 0 && !r.stopped {
		if r.remaining == 0 && !r.header(&p) {
			return
		}
		n := min(uint64(len(p)), r.remaining)
		r.payload(p[:n])
		p, r.remaining = p[n:], r.remaining-n
		if r.remaining == 0 && !r.stopped {
			r.frameDone()
		}
	}
}

// header consumes header bytes from *p; it reports whether a whole header has been read.
func (r *wsReader) header(p *[]byte) bool {
	for {
		need := 2
		if len(r.hdr) >= 2 {
			need = HeaderLen(r.hdr[1])
		}
		if len(r.hdr) >= need {
			break
		}
		if len(*p) == 0 {
			return false
		}
		take := min(need-len(r.hdr), len(*p))
		r.hdr, *p = append(r.hdr, (*p)[:take]...), (*p)[take:]
	}
	h := r.hdr
	opcode := h[0] & 0x0f
	fin := h[0]&0x80 != 0
	length, off := PayloadLen(h)
	r.mask = nil
	if h[1]&0x80 != 0 {
		r.mask = append([]byte(nil), h[off:off+4]...)
	}
	r.control, r.pos, r.remaining, r.length = opcode >= 8, 0, length, length
	r.hdr = r.hdr[:0]
	if r.fromClient {
		if why := r.refused(h, opcode, fin, length); why != "" {
			r.stopped = true
			r.s.o.ClientProtocolError("unreadable WebSocket frames: " + why)
			return false
		}
		if opcode == 8 { // x/net/websocket (gorilla likewise) reads nothing after a close frame
			r.stopped = true
			return false
		}
	}
	if !r.control {
		r.stream, r.channelAt, r.closing, r.msg = "", r.raw == nil, false, r.msg[:0]
	}
	if length == 0 {
		r.frameDone()
	}
	return true
}

// refused says why the server would not read a client's frame as it is read here, or "".
func (r *wsReader) refused(h []byte, opcode byte, fin bool, length uint64) string {
	switch {
	case r.mask == nil:
		return "an unmasked frame from the client"
	case h[0]&0x70 != 0:
		return "a frame with reserved bits set"
	case (opcode > 2 && opcode < 8) || opcode > 10:
		return fmt.Sprintf("a frame of opcode %d", opcode)
	case h[1]&0x7f == 127 && h[2]&0x80 != 0:
		// x/net/websocket clears the top bit of a 64-bit length; gorilla refuses it.
		return "a 64-bit frame length with its top bit set"
	case r.raw == nil && length > maxClientFrame:
		return fmt.Sprintf("a frame of %d bytes, over the %d exec-proxy takes from a client (kubectl sends at most 32 KiB)", length, maxClientFrame)
	case r.raw == nil:
		return ""
	// The tunnel's reader is gorilla/websocket, which fails on these.
	case opcode >= 8 && (length > 125 || !fin):
		return "a fragmented or long control frame"
	case opcode == 1:
		return "a text message in the port-forward tunnel"
	case opcode == 0 && !r.inMessage, opcode == 2 && r.inMessage:
		return "a fragmented message out of order"
	}
	if opcode <= 2 {
		r.inMessage = !fin
	}
	return ""
}

func (r *wsReader) payload(p []byte) {
	if r.control {
		r.pos += uint64(len(p))
		return
	}
	if r.raw != nil { // the SPDY reader of the tunnel copies what it keeps
		r.withUnmasked(p, r.raw)
		return
	}
	if r.channelAt && len(p) > 0 {
		ch := r.unmask(p[0])
		r.channelAt, r.pos, p = false, r.pos+1, p[1:]
		if r.fromClient && r.s.v5 && ch == channelClose {
			r.closing = true
		} else {
			if r.s.base64 {
				ch -= '0'
			}
			r.stream = r.s.channel(ch, r.fromClient)
		}
	}
	switch {
	case r.closing || r.stream == "error" || (r.s.base64 && r.stream != ""):
		// Read whole at the frame's end: a Status, a close signal, or base64.
		limit := wire.MaxErrorMessage
		if r.s.base64 {
			limit = maxBase64Message
		}
		if len(r.msg)+len(p) > limit && (r.s.base64 || r.closing) {
			r.give(fmt.Sprintf("a message of over %d bytes", limit))
			return
		}
		for _, b := range p[:min(len(p), max(0, limit-len(r.msg)))] {
			r.msg = append(r.msg, r.unmask(b))
			r.pos++
		}
	case r.stream == "resize":
		data := r.unmasked(p)
		if err := r.resized(data); err != nil {
			r.give(err.Error())
		}
	case r.stream != "":
		r.s.o.Payload(r.stream, len(p))
		if r.s.o.Wants(r.stream) {
			r.withUnmasked(p, func(data []byte) { r.s.o.Data(r.stream, data) })
			return
		}
		r.pos += uint64(len(p))
	}
}

// withUnmasked hands payload p, unmasked, to use, which has it only during the call (as a
// wire.Observer has Data's): the server's bytes, unmasked already, as they are, the client's
// through a pooled buffer. A recorded session, and a tunnelled port-forward, read every byte here.
func (r *wsReader) withUnmasked(p []byte, use func([]byte)) {
	if r.mask == nil {
		r.pos += uint64(len(p))
		use(p)
		return
	}
	if len(p) > wire.FrameBufferSize {
		use(r.unmasked(p))
		return
	}
	buf := wire.FrameBuffers.Get().(*[]byte)
	defer wire.FrameBuffers.Put(buf) // still empty: only its capacity is used
	out := append((*buf)[:0], p...)
	r.unmaskInPlace(out)
	use(out)
}

// unmasked is p unmasked, in bytes of its own.
func (r *wsReader) unmasked(p []byte) []byte {
	if r.mask == nil {
		r.pos += uint64(len(p))
		return append([]byte(nil), p...)
	}
	out := append([]byte(nil), p...)
	r.unmaskInPlace(out)
	return out
}

// unmaskInPlace unmasks p, the payload from r.pos on, and moves r.pos past it.
func (r *wsReader) unmaskInPlace(p []byte) {
	Unmask(p, [4]byte(r.mask), int(r.pos%4))
	r.pos += uint64(len(p))
}

func (r *wsReader) unmask(b byte) byte {
	if r.mask == nil {
		return b
	}
	return b ^ r.mask[r.pos%4]
}

// give gives the direction up: a client's frames end the session.
func (r *wsReader) give(why string) {
	r.stopped = true
	why = "unreadable WebSocket frames: " + why
	if r.fromClient {
		r.s.o.ClientProtocolError(why)
	} else {
		r.s.o.Lost(why)
	}
}

// frameDone ends a frame: a message, as x/net/websocket reads them.
func (r *wsReader) frameDone() {
	if r.control || r.raw != nil {
		return
	}
	msg := r.msg
	if cap(r.msg) > 4<<10 { // a large message's buffer is not kept for the session's life
		r.msg = nil
	}
	switch {
	case r.closing:
		// wsstream: exactly one byte, a channel it has, follows 255; else it ends the connection.
		if r.length != 2 || msg[0] >= byte(len(channels)) {
			r.give(fmt.Sprintf("a close signal of %d bytes", r.length))
			return
		}
		r.closed[msg[0]] = true
		return
	case r.stream == "":
		return
	case r.s.base64:
		out := make([]byte, base64.StdEncoding.DecodedLen(len(msg)))
		n, err := base64.StdEncoding.Decode(out, msg)
		if err != nil {
			return // wsstream's DataFromSocket drops the message whole
		}
		msg = out[:n]
		switch r.stream {
		case "error", "resize":
		default:
			r.s.o.Payload(r.stream, len(msg))
			r.s.o.Data(r.stream, msg)
			return
		}
	}
	switch r.stream {
	case "error":
		if len(msg) > 0 {
			r.s.o.Status(msg)
		}
	case "resize": // only base64 comes here
		if err := r.resized(msg); err != nil {
			r.give(err.Error())
		}
	}
}

// resized reads more of the client's resize stream; the observer hears the terminal sizes it
// completes. An error says the stream is not terminal sizes, as the kubelet reads them.
func (r *wsReader) resized(p []byte) error {
	var sizes []remotecommand.TerminalSize
	err := r.s.resize.Feed(p, func(size remotecommand.TerminalSize) { sizes = append(sizes, size) })
	r.s.o.Resized(sizes)
	return err
}

// remotecommand stream names by WebSocket channel, as kubectl and the kubelet number them.
var channels = map[byte]string{0: "stdin", 1: "stdout", 2: "stderr", 3: "error", 4: "resize"}

// ClientChannelOpen tells whether wsstream still reads the client's channel ch: v5's close signal
// did not close it.
func (s *FrameReader) ClientChannelOpen(ch byte) bool {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	return int(ch) >= len(s.client.closed) || !s.client.closed[ch]
}
