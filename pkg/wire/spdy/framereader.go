// Package spdy reads SPDY/3.1 frames as they pass (both directions, the client's as spdystream and
// the kubelet read them), with the header blocks' decompression; and follows frame boundaries
// (FrameCutter) for the frame writer. It reports to a wire.Observer.
package spdy

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/moby/spdystream/spdy"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
)

// maxControlFrame bounds a SPDY control frame kept whole for reading (kubectl's are under 200
// bytes); a larger one is a protocol error.
const maxControlFrame = 64 << 10

// maxDataChunk bounds what is kept of a DATA frame the observer wants before it goes to Data: a
// frame is one Data call unless it is larger (a DATA frame may be 16 MiB).
const maxDataChunk = 32 << 10

// maxForwardedPorts bounds the ports one port-forward opens streams to, as the API bounds the
// query's ports.
const maxForwardedPorts = 64

// maxStreams bounds the streams a session has open at once (port-forward opens two for each
// connection, and resets them when it ends).
const maxStreams = 1024

// FrameReader follows SPDY/3.1 frames in both directions as they pass, in the relay's own goroutine
// and without copying data it does not need. DATA frames are counted from their 8-byte headers;
// their payload is read only for the error stream (the Status with the exit code), resizes, and
// streams being recorded, a piece at a time. Control frames are gathered whole and their header
// blocks decompressed, one zlib stream per direction as SPDY has it: SYN_STREAM names each
// stream's type.
//
// The client's frames are read as the kubelet reads them: spdystream's framer and connection (which
// streams take data, and when), and the kubelet's stream handlers (which streams it reads). What
// the kubelet would not read as it is read here is a client protocol error: the session ends
// before those bytes reach the kubelet (see FuzzSPDYDifferential).
// Control frames are read here, not with spdystream's framer, which trusts a header block's count
// of headers and allocates for it: a client's crafted SYN_STREAM asking for 800 million would take
// exec-proxy's memory (found by FuzzSPDYFrameReader).
type FrameReader struct {
	o        wire.Observer
	shape    wire.Shape
	protocol string

	mu      sync.Mutex // both directions
	streams map[spdy.StreamId]*spdyStream
	opened  map[string]bool // exec: the stream types opened, each once
	// nextID is the least id the client's next SYN_STREAM may have (spdystream's
	// validateStreamId); spdystream resets a stream below it and drops its data.
	nextID spdy.StreamId
	msg    []byte // the exec's error stream's message so far
	msgID  spdy.StreamId
	// ports: port-forward, the ports streams were opened for.
	ports map[uint16]bool

	client, server spdyReader
}

// spdyStream is what is known of one stream.
type spdyStream struct {
	typ string
	// clientDone: the client sent FIN or RST; spdystream drops its later data. serverDone
	// likewise the kubelet's: once both are, the stream is forgotten.
	clientDone, serverDone bool
}

// NewFrameReader reads a session whose request asked for shape, over exec protocol protocol
// ("" for port-forward and the stream translator's connection to the kubelet), reporting to o.
func NewFrameReader(protocol string, shape wire.Shape, o wire.Observer) *FrameReader {
	s := &FrameReader{o: o, shape: shape, protocol: protocol, streams: map[spdy.StreamId]*spdyStream{}, opened: map[string]bool{},
		ports: map[uint16]bool{}}
	s.client.s, s.server.s = s, s
	s.client.fromClient = true
	return s
}

func (s *FrameReader) FromClient(p []byte) { s.client.feed(p) }
func (s *FrameReader) ToClient(p []byte)   { s.server.feed(p) }

// Close reads an error stream the connection's close cut short of its FIN as it is.
func (s *FrameReader) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msg) > 0 {
		s.o.Status(s.msg)
		s.msg = nil
	}
}

// StreamType is the type of stream id, or "".
func (s *FrameReader) StreamType(id spdy.StreamId) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[id]; st != nil {
		return st.typ
	}
	return ""
}

// StreamID is the stream of type typ, if one was opened.
func (s *FrameReader) StreamID(typ string) (spdy.StreamId, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, st := range s.streams {
		if st.typ == typ {
			return id, true
		}
	}
	return 0, false
}

// synStream takes the client's SYN_STREAM for stream id, whose header block was read as
// spdystream reads it, or says why the kubelet would not read the stream as it is read here.
func (s *FrameReader) synStream(id spdy.StreamId, flags spdy.ControlFlags, typ, port string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case id < s.nextID:
		return fmt.Errorf("a SYN_STREAM for stream %d after stream %d", id, s.nextID-2)
	case flags&spdy.ControlFlagUnidirectional != 0:
		return fmt.Errorf("a unidirectional SYN_STREAM for stream %d", id)
	case len(s.streams) >= maxStreams:
		return fmt.Errorf("more than %d streams open at once", maxStreams)
	}
	s.nextID = id + 2
	shape := s.shape
	if shape.PortForward {
		// k8s.io/cri-streaming/pkg/streaming/portforward's httpStreamReceived: the stream's own port
		// header, never the query.
		n, err := strconv.ParseUint(port, 10, 16)
		switch {
		case err != nil || n < 1:
			return fmt.Errorf("a port-forward stream with port %q", port)
		case typ != "data" && typ != "error":
			return fmt.Errorf("a port-forward stream of type %q", typ)
		case !portAllowed(shape, uint16(n)):
			return fmt.Errorf("a port-forward stream to port %d, which the request did not name (ports %v)", n, shape.Ports)
		case s.portCount(uint16(n)) > maxForwardedPorts:
			return fmt.Errorf("port-forward streams to over %d ports", maxForwardedPorts)
		}
		s.ports[uint16(n)] = true
		s.o.PortForwarded(uint16(n))
	} else {
		if !streamAllowed(shape, typ, s.protocol) || s.opened[typ] {
			return fmt.Errorf("a stream of type %q that the kubelet does not read here", typ)
		}
		s.opened[typ] = true
	}
	s.streams[id] = &spdyStream{typ: typ, clientDone: flags&spdy.ControlFlagFin != 0}
	return nil
}

// reset forgets a stream either side reset: spdystream drops its later data.
func (s *FrameReader) reset(id spdy.StreamId) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.streams, id)
}

// dataFrame looks up the stream of a DATA frame: its type, or an error when it is the client's
// and spdystream would drop it (no such stream, or one the client finished) or the kubelet would
// not read it (a stream only the kubelet writes: its data would stop spdystream's frame queue).
func (s *FrameReader) dataFrame(id spdy.StreamId, fromClient bool, length int) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[id]
	switch {
	case !fromClient && st == nil:
		return "", nil
	case !fromClient:
		return st.typ, nil
	case st == nil || st.clientDone:
		return "", fmt.Errorf("data for stream %d, which the client never opened or already ended", id)
	case length > 0 && (st.typ == "error" || st.typ == "stdout" || st.typ == "stderr"):
		return "", fmt.Errorf("data from the client for its %s stream %d", st.typ, id)
	}
	return st.typ, nil
}

// fin notes the end of one side of a stream.
func (s *FrameReader) fin(id spdy.StreamId, fromClient bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[id]
	if st == nil {
		return
	}
	if fromClient {
		st.clientDone = true
	} else {
		st.serverDone = true
	}
	if st.clientDone && st.serverDone && s.shape.PortForward {
		delete(s.streams, id) // exec's streams stay: the direct path looks them up by type
	}
}

// errorMessage gathers the exec's error stream's message, at most wire.MaxErrorMessage bytes of it.
func (s *FrameReader) errorMessage(id spdy.StreamId, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgID = id
	s.msg = append(s.msg, p[:min(len(p), max(0, wire.MaxErrorMessage-len(s.msg)))]...)
}

// errorFrameDone reads the error stream's message once it is whole.
func (s *FrameReader) errorFrameDone(fin bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The kubelet writes its Status in one piece and may close the connection without a FIN:
	// read it as soon as it is whole.
	if len(s.msg) > 0 && (fin || json.Valid(s.msg)) {
		s.o.Status(s.msg)
		s.msg = nil
	}
}

// portCount is how many ports streams were opened for, with p.
func (s *FrameReader) portCount(p uint16) int {
	if s.ports[p] {
		return len(s.ports)
	}
	return len(s.ports) + 1
}

// resized reads more of the client's resize stream; the observer hears the terminal sizes it
// completes. An error says the stream is not terminal sizes, as the kubelet reads them.
func (r *spdyReader) resized(p []byte) error {
	var sizes []remotecommand.TerminalSize
	err := r.resize.Feed(p, func(size remotecommand.TerminalSize) { sizes = append(sizes, size) })
	r.s.o.Resized(sizes)
	return err
}

// spdyReader is one direction's parser state; only one goroutine feeds it.
type spdyReader struct {
	s         *FrameReader
	hdr       [8]byte
	nhdr      int
	remaining int // payload bytes left in the current frame
	control   bool
	stream    spdy.StreamId
	typ       string
	fin       bool
	ctrl      bytes.Buffer
	data      []byte // of the current DATA frame, for the observer's Data: at most maxDataChunk
	headers   headerBlocks
	resize    wire.ResizeReader // the client's resize stream
	stopped   bool
	// fromClient: frames the kubelet would not read as they are read here end the session
	// rather than reach it.
	fromClient bool
	// frames, when set, hears every frame instead of the FrameReader (see Frames).
	frames FrameHandler
	err    error // why reading stopped, with frames
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
		if r.remaining == 0 && !r.stopped {
			r.end()
		}
	}
	r.headers.idle()
}

func (r *spdyReader) begin() {
	r.control = r.hdr[0]&0x80 != 0
	r.remaining = BodyLen(r.hdr[:])
	if r.control {
		if r.remaining > maxControlFrame {
			r.fail(fmt.Sprintf("a control frame of %d bytes", r.remaining))
			return
		}
		r.ctrl.Write(r.hdr[:])
	} else {
		// spdystream's framer: the stream id is the first word without its top bit.
		r.stream = spdy.StreamId(binary.BigEndian.Uint32(r.hdr[:4]) & 0x7fffffff)
		r.fin = spdy.DataFlags(r.hdr[4])&spdy.DataFlagFin != 0
		if r.frames != nil {
			if r.remaining == 0 {
				r.end()
			}
			return
		}
		typ, err := r.s.dataFrame(r.stream, r.fromClient, r.remaining)
		if err != nil {
			r.fail(err.Error())
			return
		}
		r.typ = typ
	}
	if r.remaining == 0 {
		r.end()
	}
}

func (r *spdyReader) piece(b []byte) {
	if r.control {
		r.ctrl.Write(b)
		return
	}
	if r.frames != nil {
		r.frames.Data(r.stream, b)
		return
	}
	switch {
	case r.fromClient && r.typ == "resize":
		if err := r.resized(b); err != nil {
			r.fail(err.Error())
		}
	case r.fromClient && (r.typ == "stdin" || r.typ == "data"),
		!r.fromClient && (r.typ == "stdout" || r.typ == "stderr" || r.typ == "data"):
		r.s.o.Payload(r.typ, len(b))
		if r.s.o.Wants(r.typ) {
			for len(b) > 0 {
				n := min(len(b), maxDataChunk-len(r.data))
				r.data, b = append(r.data, b[:n]...), b[n:]
				if len(r.data) == maxDataChunk {
					r.flushData()
				}
			}
		}
	case !r.fromClient && r.typ == "error" && !r.s.shape.PortForward:
		r.s.errorMessage(r.stream, b)
	}
}

func (r *spdyReader) end() {
	r.nhdr = 0
	if !r.control && r.frames != nil {
		r.frames.DataEnd(r.stream, r.fin)
		return
	}
	if !r.control {
		r.flushData()
		if r.typ == "error" && !r.fromClient && !r.s.shape.PortForward {
			r.s.errorFrameDone(r.fin)
		}
		if r.fin {
			r.s.fin(r.stream, r.fromClient)
		}
		return
	}
	err := r.controlFrame(r.ctrl.Bytes())
	if r.ctrl.Cap() > 4<<10 { // a large frame's buffer is not kept for the session's life
		r.ctrl = bytes.Buffer{}
	}
	r.ctrl.Reset()
	if err != nil {
		r.fail(err.Error())
	}
}

func (r *spdyReader) flushData() {
	if len(r.data) > 0 {
		r.s.o.Data(r.typ, r.data)
		r.data = r.data[:0]
	}
}

// fail gives the direction up: its frames can no longer be followed. The client's end the session.
func (r *spdyReader) fail(why string) {
	r.stop()
	why = "unreadable SPDY frames: " + why
	if r.frames != nil {
		r.err = errors.New(why)
		return
	}
	if r.fromClient {
		r.s.o.ClientProtocolError(why)
	} else {
		r.s.o.Lost(why)
	}
}

// stop reads no more of the direction.
func (r *spdyReader) stop() {
	r.stopped = true
	r.headers, r.data = headerBlocks{}, nil
	r.ctrl = bytes.Buffer{}
}

// streamAllowed tells whether the kubelet reads a client's SPDY stream of type typ in an exec or
// attach negotiated with protocol (k8s.io/cri-streaming/pkg/streaming/remotecommand's
// waitForStreams: the first streams of the types it expects, as many as it expects; a stream
// beyond them is never replied to and stops spdystream's frame queue).
func streamAllowed(sh wire.Shape, typ, protocol string) bool {
	resize := protocol == "v3.channel.k8s.io" || protocol == "v4.channel.k8s.io" || protocol == "v5.channel.k8s.io"
	if !sh.Known {
		return typ == "error" || typ == "stdin" || typ == "stdout" || typ == "stderr" || typ == "resize"
	}
	switch typ {
	case "error":
		return true
	case "stdin":
		return sh.Stdin
	case "stdout":
		return sh.Stdout
	case "stderr":
		return sh.Stderr
	case "resize":
		return sh.TTY && resize
	}
	return false
}

// portAllowed tells whether a port-forward stream to port (a port header the kubelet parsed)
// was asked for.
func portAllowed(sh wire.Shape, port uint16) bool {
	if len(sh.Ports) == 0 {
		return true
	}
	return slices.Contains(sh.Ports, int32(port))
}

// Open tells the stream of type typ, and whether each side may still send on it (neither finished
// or reset it): what exec-proxy needs to write frames of its own on the stream.
func (s *FrameReader) Open(typ string) (id spdy.StreamId, client, server bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, st := range s.streams {
		if st.typ == typ {
			return id, !st.clientDone, !st.serverDone
		}
	}
	return 0, false, false
}
