package spdy

import (
	"encoding/binary"
	"fmt"
	"net/http"

	"github.com/moby/spdystream/spdy"
)

// FrameHandler hears every frame of one direction that a Frames reads, for exec-proxy's own SPDY
// connection (package spdyclient). Calls come from the goroutine that feeds the Frames.
type FrameHandler interface {
	// Control is a whole control frame, read as spdystream's framer reads it; headers is its
	// header block (SYN_STREAM, SYN_REPLY, HEADERS), decompressed, else nil. An error stops the
	// reading: Feed returns it.
	Control(f ControlFrame) error
	// Data is the next piece of stream id's DATA frame: p is the handler's only during the call.
	Data(id spdy.StreamId, p []byte)
	// DataEnd ends the DATA frame; fin is its FIN flag.
	DataEnd(id spdy.StreamId, fin bool)
}

// ControlFrame is a control frame's fields that a SPDY client acts on.
type ControlFrame struct {
	Type    spdy.ControlFrameType
	Flags   spdy.ControlFlags
	Stream  spdy.StreamId // SYN_STREAM, SYN_REPLY, HEADERS, RST_STREAM; GOAWAY's last good stream
	Word    uint32        // PING's id, RST_STREAM's and GOAWAY's status
	Headers http.Header
}

// Frames reads one direction of SPDY frames for a FrameHandler, with FrameReader's parser: the
// same frame boundaries, bounds and header block decompression (no zlib reader kept between
// reads while the blocks are few).
type Frames struct {
	r spdyReader
}

// NewFrames reads frames for h.
func NewFrames(h FrameHandler) *Frames {
	f := &Frames{}
	f.r.frames = h
	return f
}

// Feed reads the next bytes; after an error (an unreadable frame, or the handler's) it reads no more.
func (f *Frames) Feed(p []byte) error {
	f.r.feed(p)
	return f.r.err
}

// handledControlFrame reads a control frame for the handler, as spdystream's framer reads the
// frames a server sends: a frame it would fail on is an error here.
func (r *spdyReader) handledControlFrame(typ spdy.ControlFrameType, flags spdy.ControlFlags, payload []byte) error {
	word := func(i int) uint32 { return binary.BigEndian.Uint32(payload[4*i:]) }
	f := ControlFrame{Type: typ, Flags: flags}
	switch typ {
	case spdy.TypeSynStream, spdy.TypeSynReply, spdy.TypeHeaders:
		at := 4
		if typ == spdy.TypeSynStream {
			at = 10
		}
		if len(payload) < at {
			return fmt.Errorf("a control frame of type %d of %d bytes", typ, len(payload))
		}
		h, err := r.headers.read(payload[at:])
		if err != nil {
			return err
		}
		if f.Stream = spdy.StreamId(word(0) & 0x7fffffff); f.Stream == 0 {
			return fmt.Errorf("a control frame of type %d for stream 0", typ)
		}
		f.Headers = h
	case spdy.TypeRstStream:
		if len(payload) != 8 || word(0) == 0 || word(1) == 0 {
			return fmt.Errorf("a RST_STREAM of %d bytes", len(payload))
		}
		f.Stream, f.Word = spdy.StreamId(word(0)), word(1)
	case spdy.TypePing:
		if len(payload) != 4 || word(0) == 0 || flags != 0 {
			return fmt.Errorf("a PING frame of %d bytes, flags %d", len(payload), flags)
		}
		f.Word = word(0)
	case spdy.TypeGoAway:
		if len(payload) != 8 || flags != 0 {
			return fmt.Errorf("a GOAWAY frame of %d bytes, flags %d", len(payload), flags)
		}
		f.Stream, f.Word = spdy.StreamId(word(0)), word(1)
	case spdy.TypeSettings:
		if len(payload) < 4 || uint64(len(payload)) != 4+8*uint64(word(0)) {
			return fmt.Errorf("a SETTINGS frame of %d bytes", len(payload))
		}
	case spdy.TypeWindowUpdate:
		if len(payload) != 8 || flags != 0 {
			return fmt.Errorf("a WINDOW_UPDATE frame of %d bytes, flags %d", len(payload), flags)
		}
	default:
		return fmt.Errorf("a control frame of type %d", typ)
	}
	if err := r.frames.Control(f); err != nil {
		r.stop()
		r.err = err
	}
	return nil
}
