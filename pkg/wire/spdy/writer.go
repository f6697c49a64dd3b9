package spdy

import (
	"encoding/binary"
	"hash/adler32"
	"net/http"
	"slices"
	"strings"

	"github.com/moby/spdystream/spdy"
)

// Frames exec-proxy's own SPDY connection writes, as spdystream's framer writes them, except the
// header blocks: a SPDY/3 header block is the next part of one zlib stream (with the SPDY
// dictionary) that runs across the direction's blocks. spdystream's framer keeps a zlib writer at
// best compression for it, whose hash tables take about 650 KiB for the connection's life.
// HeaderBlocks writes the same stream with stored (uncompressed) deflate blocks: no compressor
// state at all, and every standard zlib reader reads it as it reads a compressed one.

// maxStored is the most bytes a stored deflate block holds (its LEN is 16 bits).
const maxStored = 0xffff

// HeaderBlocks writes one direction's header blocks; not for concurrent use.
type HeaderBlocks struct {
	started bool // the zlib header went out with the first block
}

// Append appends h's header block to b: names in lower case and sorted, values joined with NULs
// (spdystream's writeHeaderValueBlock), as stored deflate blocks each ended by a sync flush
// (spdystream's framer flushes its writer after each block).
func (w *HeaderBlocks) Append(b []byte, h http.Header) []byte {
	var raw []byte
	raw = binary.BigEndian.AppendUint32(raw, uint32(len(h)))
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v := strings.Join(h[name], "\x00")
		raw = binary.BigEndian.AppendUint32(raw, uint32(len(name)))
		raw = append(raw, strings.ToLower(name)...)
		raw = binary.BigEndian.AppendUint32(raw, uint32(len(v)))
		raw = append(raw, v...)
	}
	if !w.started {
		w.started = true
		b = append(b, zlibHeader()...)
	}
	for len(raw) > 0 {
		n := min(len(raw), maxStored)
		b = appendStored(b, raw[:n])
		raw = raw[n:]
	}
	return appendStored(b, nil) // the sync flush: an empty stored block
}

// appendStored appends a stored deflate block, not the last, of p: its 3 header bits (BFINAL 0,
// BTYPE 00) padded to the byte, LEN and NLEN little-endian, then p.
func appendStored(b, p []byte) []byte {
	n := uint16(len(p))
	b = append(b, 0, byte(n), byte(n>>8), byte(^n), byte(^n>>8))
	return append(b, p...)
}

// zlibHeader is a zlib stream's header with a preset dictionary, SPDY's (RFC 1950: CMF deflate
// with a 32 KiB window, FLG with FDICT and the check bits, then the dictionary's Adler-32).
func zlibHeader() []byte {
	const cmf, fdict = 0x78, 0x20
	flg := byte(fdict)
	flg += byte((31 - (uint(cmf)<<8+uint(flg))%31) % 31)
	return binary.BigEndian.AppendUint32([]byte{cmf, flg}, adler32.Checksum(spdyHeaderDictionary))
}

// controlHeader appends a SPDY/3 control frame's header.
func controlHeader(b []byte, typ spdy.ControlFrameType, flags spdy.ControlFlags, length int) []byte {
	b = append(b, 0x80, 3)
	b = binary.BigEndian.AppendUint16(b, uint16(typ))
	return binary.BigEndian.AppendUint32(b, uint32(flags)<<24|uint32(length))
}

// AppendSynStream appends a SYN_STREAM for stream id with headers h (priority 0, no associated
// stream, as spdystream's CreateStream writes them).
func AppendSynStream(b []byte, w *HeaderBlocks, id spdy.StreamId, flags spdy.ControlFlags, h http.Header) []byte {
	start := len(b)
	b = controlHeader(b, spdy.TypeSynStream, flags, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(id))
	b = append(b, 0, 0, 0, 0, 0, 0) // associated stream, priority, slot
	b = w.Append(b, h)
	body := len(b) - start - FrameHeaderLen
	b[start+5], b[start+6], b[start+7] = byte(body>>16), byte(body>>8), byte(body)
	return b
}

// AppendDataHeader appends the header of a DATA frame of n bytes (at most MaxDataLength).
func AppendDataHeader(b []byte, id spdy.StreamId, fin bool, n int) []byte {
	var flags spdy.DataFlags
	if fin {
		flags = spdy.DataFlagFin
	}
	b = binary.BigEndian.AppendUint32(b, uint32(id)&0x7fffffff)
	return binary.BigEndian.AppendUint32(b, uint32(flags)<<24|uint32(n))
}

// MaxDataLength is the most payload a DATA frame carries (its length is 24 bits).
const MaxDataLength = spdy.MaxDataLength

// AppendRstStream appends a RST_STREAM for stream id.
func AppendRstStream(b []byte, id spdy.StreamId, status spdy.RstStreamStatus) []byte {
	b = controlHeader(b, spdy.TypeRstStream, 0, 8)
	b = binary.BigEndian.AppendUint32(b, uint32(id))
	return binary.BigEndian.AppendUint32(b, uint32(status))
}

// AppendPing appends a PING with id.
func AppendPing(b []byte, id uint32) []byte {
	return binary.BigEndian.AppendUint32(controlHeader(b, spdy.TypePing, 0, 4), id)
}

// AppendGoAway appends a GOAWAY naming the last stream the peer opened that was taken.
func AppendGoAway(b []byte, last spdy.StreamId, status spdy.GoAwayStatus) []byte {
	b = controlHeader(b, spdy.TypeGoAway, 0, 8)
	b = binary.BigEndian.AppendUint32(b, uint32(last))
	return binary.BigEndian.AppendUint32(b, uint32(status))
}
