package spdy

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/moby/spdystream/spdy"
)

// Bounds on a header block, decompressed: kubectl's SYN_STREAMs carry about five short headers.
// They bound the decompression too (a zlib bomb is read no further than they allow).
const (
	maxHeaders      = 256
	maxHeaderBytes  = 16 << 10 // names and values of one block
	maxHeaderValues = 512      // after values are split at NULs
)

// headerBlocks decompresses one direction's header blocks: a single zlib stream, with SPDY's
// dictionary, that runs across them all, read as spdystream's framer reads it (a LimitedReader
// over each block in turn under one zlib reader).
//
// A zlib reader holds about 43 KiB (its 32 KiB window), and a session's header blocks all come at
// its start: an exec session's few streams open once, and the session may then stay idle for
// hours. So between reads no reader is kept, only the blocks read so far (a few hundred bytes):
// the next block is read by a new reader that first reads them all again the same way, which
// leaves it in the very state the one reader would be in. Once they are more than maxReplayed
// bytes (a port-forward opening many connections), one reader is kept; so it is once they are
// more than maxReplayedBlocks, or decompress to more than maxReplayedHeaders: reading them again
// costs a reader and their decompressed bytes, which a client could otherwise make each small
// block cost many times over (a block of 40 bytes decompresses to 16 KiB). (A pool of readers
// measured worse: more heap in use and larger stacks per idle session.)
type headerBlocks struct {
	block   bytes.Reader
	limited io.LimitedReader
	zr      io.ReadCloser // until the direction's read ends (see idle), or always once kept
	past    [][]byte      // the blocks read so far, until the reader is kept
	size    int           // their length
	headers int           // their length decompressed
	kept    bool
}

// The most header blocks read again rather than a reader kept: bytes, blocks (an exec session
// opens at most five streams), and bytes decompressed.
const (
	maxReplayed        = 1 << 10
	maxReplayedBlocks  = 8
	maxReplayedHeaders = 4 << 10
)

// spdystream's framer refuses these headers in a SYN_STREAM (invalidReqHeaders; keys as
// http.Header keeps them).
var invalidSynStreamHeaders = map[string]bool{"Connection": true, "Host": true, "Keep-Alive": true,
	"Proxy-Connection": true, "Transfer-Encoding": true}

// controlFrame reads one whole control frame as spdystream's framer reads it (spdy.Framer's
// ReadFrame): a frame it would fail on, or read other than at its length, is an error here; the
// kubelet would end the connection, or read the next frame from the wrong place.
func (r *spdyReader) controlFrame(frame []byte) error {
	payload := frame[8:]
	flags := spdy.ControlFlags(frame[4])
	typ := spdy.ControlFrameType(binary.BigEndian.Uint16(frame[2:4]))
	if r.frames != nil {
		return r.handledControlFrame(typ, flags, payload)
	}
	if !r.fromClient {
		return r.serverControlFrame(typ, payload)
	}
	word := func(i int) uint32 { return binary.BigEndian.Uint32(payload[4*i:]) }
	switch typ {
	case spdy.TypeSynStream:
		if len(payload) < 10 {
			return fmt.Errorf("a SYN_STREAM of %d bytes", len(payload))
		}
		id := word(0) // read whole: an id over 0x7fffffff is refused by spdystream
		h, err := r.headers.read(payload[10:])
		if err != nil {
			return err
		}
		for k := range h {
			if invalidSynStreamHeaders[k] {
				return fmt.Errorf("a SYN_STREAM with header %q", k)
			}
		}
		if id == 0 || id > 0x7fffffff {
			return fmt.Errorf("a SYN_STREAM for stream %d", id)
		}
		return r.s.synStream(spdy.StreamId(id), flags, h.Get("streamtype"), h.Get("port"))
	case spdy.TypeRstStream:
		if len(payload) != 8 || word(0) == 0 || word(1) == 0 {
			return fmt.Errorf("a RST_STREAM of %d bytes", len(payload))
		}
		r.s.reset(spdy.StreamId(word(0)))
	case spdy.TypeSettings:
		if len(payload) < 4 || uint64(len(payload)) != 4+8*uint64(word(0)) {
			return fmt.Errorf("a SETTINGS frame of %d bytes", len(payload))
		}
	case spdy.TypePing:
		if len(payload) != 4 || word(0) == 0 || flags != 0 {
			return fmt.Errorf("a PING frame of %d bytes, flags %d", len(payload), flags)
		}
	case spdy.TypeGoAway:
		if len(payload) != 8 || flags != 0 {
			return fmt.Errorf("a GOAWAY frame of %d bytes, flags %d", len(payload), flags)
		}
		// spdystream reads nothing after a GOAWAY: neither is anything read here.
		r.stop()
	case spdy.TypeWindowUpdate:
		if len(payload) != 8 || flags != 0 {
			return fmt.Errorf("a WINDOW_UPDATE frame of %d bytes, flags %d", len(payload), flags)
		}
	default:
		// SYN_REPLY and HEADERS too: the kubelet opens no stream for a client to reply to, and
		// spdystream holds a HEADERS frame until someone reads it, which nobody does.
		return fmt.Errorf("a control frame of type %d from the client", typ)
	}
	return nil
}

// serverControlFrame reads the kubelet's control frames: their header blocks, to keep the
// decompressor in step, and resets.
func (r *spdyReader) serverControlFrame(typ spdy.ControlFrameType, payload []byte) error {
	var block []byte
	switch typ {
	case spdy.TypeSynStream:
		if len(payload) < 10 {
			return fmt.Errorf("a SYN_STREAM of %d bytes", len(payload))
		}
		block = payload[10:]
	case spdy.TypeSynReply, spdy.TypeHeaders:
		if len(payload) < 4 {
			return fmt.Errorf("a header frame of %d bytes", len(payload))
		}
		block = payload[4:]
	case spdy.TypeRstStream:
		if len(payload) >= 4 {
			r.s.reset(spdy.StreamId(binary.BigEndian.Uint32(payload)))
		}
		return nil
	default:
		return nil
	}
	_, err := r.headers.read(block)
	return err
}

// read decompresses one header block and reads it as spdystream's parseHeaderValueBlock does:
// names must be lowercase and not repeat (else its framer fails), and each value is split at
// NULs into several values, so that "stdin\x00x" is stdin to http.Header's Get. The block must be
// used up (else WrongCompressedPayloadSize).
func (h *headerBlocks) read(block []byte) (http.Header, error) {
	if h.zr == nil && len(h.past) > 0 {
		for _, b := range h.past { // as they were read: no error
			if _, _, err := h.decode(b); err != nil {
				return nil, fmt.Errorf("header blocks read again: %w", err)
			}
		}
	}
	out, n, err := h.decode(block)
	if err != nil || h.kept {
		return out, err // after an error, the direction reads no more
	}
	h.past, h.size, h.headers = append(h.past, bytes.Clone(block)), h.size+len(block), h.headers+n
	if h.size > maxReplayed || len(h.past) > maxReplayedBlocks || h.headers > maxReplayedHeaders {
		h.past, h.kept = nil, true
	}
	return out, nil
}

// idle lets the reader go, unless it is kept: what was read so far has been read. The blocks that
// come in one read (a client's SYN_STREAMs, often) share a reader.
func (h *headerBlocks) idle() {
	if !h.kept {
		h.zr = nil
	}
}

// decode reads one block: the zlib stream starts at the first, with the reader's zlib header. n
// is the block's length decompressed.
func (h *headerBlocks) decode(block []byte) (_ http.Header, n int, _ error) {
	h.block.Reset(block)
	h.limited = io.LimitedReader{R: &h.block, N: int64(len(block))}
	if h.zr == nil {
		zr, err := zlib.NewReaderDict(&h.limited, spdyHeaderDictionary)
		if err != nil {
			return nil, 0, fmt.Errorf("header block: %w", err)
		}
		h.zr = zr
	}
	var count uint32
	if err := binary.Read(h.zr, binary.BigEndian, &count); err != nil {
		return nil, 0, fmt.Errorf("header block: %w", err)
	}
	if count > maxHeaders {
		return nil, 0, fmt.Errorf("a header block of %d headers", count)
	}
	out := http.Header{}
	budget, values := maxHeaderBytes, 0
	for i := uint32(0); i < count; i++ {
		name, err := h.field(&budget)
		if err != nil {
			return nil, 0, err
		}
		if name != strings.ToLower(name) {
			return nil, 0, fmt.Errorf("a header name %q not in lower case", name)
		}
		if out[name] != nil { // as spdystream checks: a key http.Header did not canonicalize
			return nil, 0, fmt.Errorf("a header %q twice", name)
		}
		value, err := h.field(&budget)
		if err != nil {
			return nil, 0, err
		}
		if values += strings.Count(value, "\x00") + 1; values > maxHeaderValues {
			return nil, 0, fmt.Errorf("a header block of over %d values", maxHeaderValues)
		}
		for _, v := range strings.Split(value, "\x00") {
			out.Add(name, v)
		}
	}
	if h.limited.N != 0 {
		return nil, 0, errors.New("a header block longer than its headers")
	}
	return out, 4 + 8*int(count) + maxHeaderBytes - budget, nil
}

func (h *headerBlocks) field(budget *int) (string, error) {
	var n uint32
	if err := binary.Read(h.zr, binary.BigEndian, &n); err != nil {
		return "", fmt.Errorf("header block: %w", err)
	}
	if uint64(n) > uint64(*budget) {
		return "", fmt.Errorf("a header block of over %d bytes", maxHeaderBytes)
	}
	*budget -= int(n)
	buf := make([]byte, n)
	if _, err := io.ReadFull(h.zr, buf); err != nil {
		return "", fmt.Errorf("header block: %w", err)
	}
	return string(buf), nil
}
