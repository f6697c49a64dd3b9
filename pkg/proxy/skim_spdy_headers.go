package proxy

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/moby/spdystream/spdy"
)

// Bounds on a header block: kubectl's SYN_STREAMs carry about five short headers.
const (
	maxHeaders     = 256
	maxHeaderField = 8 << 10
)

// SPDY/3 control frame types that carry a header block.
const (
	typeSynStream = 1
	typeSynReply  = 2
	typeHeaders   = 8
)

// headerBlocks decompresses one direction's header blocks: a single zlib stream, with SPDY's
// dictionary, that runs across them all.
type headerBlocks struct {
	block   bytes.Reader
	limited io.LimitedReader
	zr      io.ReadCloser
}

// controlFrame reads one whole control frame; a SYN_STREAM's stream type and port are noted.
func (r *spdyReader) controlFrame(frame []byte) error {
	payload := frame[8:]
	var id uint32
	var block []byte
	switch binary.BigEndian.Uint16(frame[2:4]) {
	case typeSynStream:
		if len(payload) < 10 {
			return fmt.Errorf("a SYN_STREAM of %d bytes", len(payload))
		}
		id, block = binary.BigEndian.Uint32(payload)&0x7fffffff, payload[10:]
	case typeSynReply, typeHeaders:
		if len(payload) < 4 {
			return fmt.Errorf("a header frame of %d bytes", len(payload))
		}
		block = payload[4:]
	default:
		return nil // no header block
	}
	headers, err := r.headers.read(block)
	if err != nil {
		return err
	}
	if binary.BigEndian.Uint16(frame[2:4]) == typeSynStream {
		r.s.synStream(spdy.StreamId(id), headers["streamtype"], headers["port"])
	}
	return nil
}

// read decompresses one header block and returns the headers exec-proxy looks at.
func (h *headerBlocks) read(block []byte) (map[string]string, error) {
	h.block.Reset(block)
	h.limited = io.LimitedReader{R: &h.block, N: int64(len(block))}
	if h.zr == nil {
		zr, err := zlib.NewReaderDict(&h.limited, spdyHeaderDictionary)
		if err != nil {
			return nil, fmt.Errorf("header block: %w", err)
		}
		h.zr = zr
	}
	var n uint32
	if err := binary.Read(h.zr, binary.BigEndian, &n); err != nil {
		return nil, fmt.Errorf("header block: %w", err)
	}
	if n > maxHeaders {
		return nil, fmt.Errorf("a header block of %d headers", n)
	}
	out := map[string]string{}
	for i := uint32(0); i < n; i++ {
		name, err := h.field()
		if err != nil {
			return nil, err
		}
		value, err := h.field()
		if err != nil {
			return nil, err
		}
		if name = strings.ToLower(name); name == "streamtype" || name == "port" {
			out[name] = value
		}
	}
	return out, nil
}

func (h *headerBlocks) field() (string, error) {
	var n uint32
	if err := binary.Read(h.zr, binary.BigEndian, &n); err != nil {
		return "", fmt.Errorf("header block: %w", err)
	}
	if n > maxHeaderField {
		return "", fmt.Errorf("a header field of %d bytes", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(h.zr, buf); err != nil {
		return "", fmt.Errorf("header block: %w", err)
	}
	return string(buf), nil
}
