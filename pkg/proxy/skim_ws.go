package proxy

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// maxErrorMessage bounds what is kept of an error stream's message.
const maxErrorMessage = 64 << 10

// wsSkimmer follows WebSocket frames (RFC 6455) in both directions. Each message's first payload
// byte is its channel (an ASCII digit in the base64 protocols).
type wsSkimmer struct {
	stats          *streamStats
	base64         bool
	client, server wsReader
	// tunnel, for port-forward over WebSocket, reads the SPDY stream the messages carry.
	tunnel *spdySkimmer
}

func newWSSkimmer(protocol string, stats *streamStats) *wsSkimmer {
	s := &wsSkimmer{stats: stats, base64: strings.Contains(protocol, "base64")}
	s.client.s, s.server.s = s, s
	s.client.fromClient = true
	return s
}

func (s *wsSkimmer) fromClient(p []byte) { s.client.feed(p) }
func (s *wsSkimmer) toClient(p []byte)   { s.server.feed(p) }

func (s *wsSkimmer) close() {
	if s.tunnel != nil {
		s.tunnel.close()
	}
}

// newWSTunnelSkimmer reads port-forward tunnelled over WebSocket: the binary messages carry a
// SPDY connection's bytes, without channel bytes.
func newWSTunnelSkimmer(stats *streamStats) *wsSkimmer {
	s := &wsSkimmer{stats: stats, tunnel: newSPDYSkimmer(stats)}
	s.client.s, s.server.s = s, s
	s.client.fromClient = true
	s.client.raw, s.server.raw = s.tunnel.fromClient, s.tunnel.toClient
	return s
}

// wsReader is one direction's parser state; only one goroutine feeds it.
type wsReader struct {
	s         *wsSkimmer
	hdr       []byte
	remaining uint64 // payload bytes left in the current frame
	pos       uint64 // payload bytes read of the current frame, for unmasking
	mask      []byte
	control   bool
	fin       bool
	stream    string       // of the current message
	channelAt bool         // the next payload byte is the channel
	msg       []byte       // the error stream's message so far
	raw       func([]byte) // when set, payload goes here unmasked, with no channel byte
	// fromClient: a client's frame must be masked and of a defined opcode (RFC 6455 5.1, 5.2);
	// one that is not ends the session.
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
		if r.remaining == 0 {
			r.frameDone()
		}
	}
}

// header consumes header bytes from *p; it reports whether a whole header has been read.
func (r *wsReader) header(p *[]byte) bool {
	for {
		need := 2
		if len(r.hdr) >= 2 {
			need = wsHeaderLen(r.hdr[1])
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
	length, off := wsPayloadLen(h)
	r.mask = nil
	if h[1]&0x80 != 0 {
		r.mask = append([]byte(nil), h[off:off+4]...)
	}
	r.fin, r.control, r.pos, r.remaining = h[0]&0x80 != 0, opcode >= 8, 0, length
	if r.fromClient && (r.mask == nil || (opcode > 2 && opcode < 8) || opcode > 10) {
		r.stopped = true
		r.s.stats.clientProtocolError(fmt.Sprintf("unreadable WebSocket frames: one with opcode %d, masked %t, from the client", opcode, r.mask != nil))
		return false
	}
	if opcode == 1 || opcode == 2 { // a new message; 0 continues the current one
		r.stream, r.channelAt, r.msg = "", true, nil
	}
	r.hdr = r.hdr[:0]
	if length == 0 {
		r.frameDone()
	}
	return true
}

func (r *wsReader) payload(p []byte) {
	if r.control {
		r.pos += uint64(len(p))
		return
	}
	if r.raw != nil {
		data := p
		if r.mask != nil {
			data = make([]byte, len(p))
			for i, b := range p {
				data[i] = r.unmask(b)
				r.pos++
			}
		}
		r.raw(data)
		return
	}
	if r.channelAt && len(p) > 0 {
		ch := r.unmask(p[0])
		if r.s.base64 {
			ch -= '0'
		}
		r.stream, r.channelAt, r.pos, p = wsChannels[ch], false, r.pos+1, p[1:]
	}
	switch r.stream {
	case "error", "resize": // whole messages are read: a Status, or terminal sizes
		for _, b := range p {
			if len(r.msg) < maxErrorMessage {
				r.msg = append(r.msg, r.unmask(b))
			}
			r.pos++
		}
	default:
		r.s.stats.add(r.stream, len(p))
		if r.s.stats.recordsStream(r.stream) {
			data := make([]byte, len(p))
			for i, b := range p {
				data[i] = r.unmask(b)
				r.pos++
			}
			if r.s.base64 {
				data = decodeBase64(data)
			}
			r.s.stats.record(r.stream, data)
			return
		}
		r.pos += uint64(len(p))
	}
}

func (r *wsReader) unmask(b byte) byte {
	if r.mask == nil {
		return b
	}
	return b ^ r.mask[r.pos%4]
}

func (r *wsReader) frameDone() {
	if r.control || !r.fin {
		return
	}
	switch r.stream {
	case "error":
		if len(r.msg) > 0 {
			msg := r.msg
			if r.s.base64 {
				msg = decodeBase64(msg)
			}
			r.s.stats.status(msg)
		}
	case "resize":
		msg := r.msg
		if r.s.base64 {
			msg = decodeBase64(msg)
		}
		r.s.stats.resized(msg)
	}
	r.stream = ""
}

// wsHeaderLen is the length of a WebSocket frame header whose second byte is second.
func wsHeaderLen(second byte) int {
	n := 2
	switch second & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if second&0x80 != 0 {
		n += 4
	}
	return n
}

// wsPayloadLen reads a whole WebSocket frame header: the payload's length, and where the masking
// key (if any) starts.
func wsPayloadLen(h []byte) (length uint64, off int) {
	switch l := h[1] & 0x7f; l {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:4])), 4
	case 127:
		return binary.BigEndian.Uint64(h[2:10]), 10
	default:
		return uint64(l), 2
	}
}
