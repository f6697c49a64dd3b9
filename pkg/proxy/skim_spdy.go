package proxy

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/moby/spdystream/spdy"
)

// maxControlFrame bounds a SPDY control frame kept whole for the framer (kubectl's are tiny).
const maxControlFrame = 1 << 20

// spdySkimmer follows SPDY/3.1 frames in both directions as they pass, in the relay's own goroutine
// and without copying data it does not need. DATA frames are counted from their 8-byte headers;
// their payload is kept only for the error stream (the Status with the exit code), resizes, and
// streams being recorded. Control frames are gathered whole and their header blocks decompressed,
// one zlib stream per direction as SPDY has it: SYN_STREAM names each stream's type.
// Control frames are read here, not with spdystream's framer, which trusts a header block's count
// of headers and allocates for it: a client's crafted SYN_STREAM asking for 800 million would take
// exec-proxy's memory (found by FuzzSPDYSkimmer).
type spdySkimmer struct {
	stats *streamStats

	mu    sync.Mutex // both directions
	types map[spdy.StreamId]string
	msgs  map[spdy.StreamId][]byte

	client, server spdyReader
}

func newSPDYSkimmer(stats *streamStats) *spdySkimmer {
	s := &spdySkimmer{stats: stats, types: map[spdy.StreamId]string{}, msgs: map[spdy.StreamId][]byte{}}
	s.client.s, s.server.s = s, s
	s.client.fromClient = true
	return s
}

func (s *spdySkimmer) fromClient(p []byte) { s.client.feed(p) }
func (s *spdySkimmer) toClient(p []byte)   { s.server.feed(p) }

// close reads an error stream the connection's close cut short of its FIN as it is.
func (s *spdySkimmer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, msg := range s.msgs {
		s.stats.status(msg)
		delete(s.msgs, id)
	}
}

func (s *spdySkimmer) streamType(id spdy.StreamId) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.types[id]
}

// streamID is the stream of type typ, if one was opened.
func (s *spdySkimmer) streamID(typ string) (spdy.StreamId, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range s.types {
		if t == typ {
			return id, true
		}
	}
	return 0, false
}

func (s *spdySkimmer) synStream(id spdy.StreamId, typ, port string) {
	s.mu.Lock()
	s.types[id] = typ
	s.mu.Unlock()
	s.stats.port(port)
}

// data handles a whole DATA frame of a stream whose payload was kept.
func (s *spdySkimmer) data(id spdy.StreamId, typ string, payload []byte, fin bool) {
	switch typ {
	case "error":
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.msgs[id]) < maxErrorMessage {
			s.msgs[id] = append(s.msgs[id], payload...)
		}
		// The kubelet writes its Status in one piece and may close the connection without a FIN:
		// read it as soon as it is whole.
		if msg := s.msgs[id]; len(msg) > 0 && (fin || json.Valid(msg)) {
			s.stats.status(msg)
			delete(s.msgs, id)
		}
	case "resize":
		s.stats.resized(payload)
	default:
		s.stats.record(typ, payload)
	}
}

// spdyReader is one direction's parser state; only one goroutine feeds it.
type spdyReader struct {
	s         *spdySkimmer
	hdr       [8]byte
	nhdr      int
	remaining int // payload bytes left in the current frame
	control   bool
	stream    spdy.StreamId
	typ       string
	fin       bool
	keep      bool   // the current DATA frame's payload is wanted
	payload   []byte // what was kept of it
	ctrl      bytes.Buffer
	headers   headerBlocks
	stopped   bool
	// fromClient: frames no client sends (unreadable, or data for a stream it never opened)
	// end the session rather than reach the kubelet, which would wait on them.
	fromClient bool
}

func (r *spdyReader) feed(p []byte) {
	for len(p) > 0 && !r.stopped {
		if r.nhdr < len(r.hdr) {
			n := copy(r.hdr[r.nhdr:], p)
			r.nhdr, p = r.nhdr+n, p[n:]
			if r.nhdr == len(r.hdr) {
				r.begin()
			}
			continue
		}
		n := min(len(p), r.remaining)
		r.piece(p[:n])
		p, r.remaining = p[n:], r.remaining-n
		if r.remaining == 0 {
			r.end()
		}
	}
}

func (r *spdyReader) begin() {
	r.control = r.hdr[0]&0x80 != 0
	r.remaining = spdyBodyLen(r.hdr[:])
	if r.control {
		if r.remaining > maxControlFrame {
			r.stop(fmt.Sprintf("unreadable SPDY frames: a control frame of %d bytes", r.remaining))
			return
		}
		r.ctrl.Write(r.hdr[:])
	} else {
		r.stream = spdy.StreamId(binary.BigEndian.Uint32(r.hdr[:4]) & 0x7fffffff)
		r.fin = r.hdr[4]&byte(spdy.DataFlagFin) != 0
		r.typ = r.s.streamType(r.stream)
		if r.typ == "" && r.fromClient {
			r.stop(fmt.Sprintf("unreadable SPDY frames: data for stream %d, which the client never opened", r.stream))
			return
		}
		r.keep = r.typ == "error" || r.typ == "resize" || r.s.stats.recordsStream(r.typ)
		r.payload = r.payload[:0]
	}
	if r.remaining == 0 {
		r.end()
	}
}

func (r *spdyReader) piece(b []byte) {
	switch {
	case r.control:
		r.ctrl.Write(b)
		return
	case r.typ != "error" && r.typ != "resize":
		r.s.stats.add(r.typ, len(b))
	}
	if r.keep && (r.typ != "error" || len(r.payload) < maxErrorMessage) {
		r.payload = append(r.payload, b...)
	}
}

func (r *spdyReader) end() {
	r.nhdr = 0
	if !r.control {
		if r.keep {
			r.s.data(r.stream, r.typ, r.payload, r.fin)
		}
		return
	}
	err := r.controlFrame(r.ctrl.Bytes())
	r.ctrl.Reset()
	if err != nil {
		r.stop("unreadable SPDY frames: " + err.Error())
	}
}

// stop gives the direction up: its frames can no longer be followed.
func (r *spdyReader) stop(why string) {
	r.stopped = true
	r.payload, r.headers = nil, headerBlocks{}
	r.ctrl = bytes.Buffer{}
	if r.fromClient {
		r.s.stats.clientProtocolError(why)
	} else {
		r.s.stats.lost(why)
	}
}
