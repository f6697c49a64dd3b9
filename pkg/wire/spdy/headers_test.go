package spdy

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/spdystream/spdy"
)

// synStreamBlocks are the header blocks of n SYN_STREAMs as spdystream's framer writes them (one
// zlib stream across them), with the headers each carries; extra, if not 0, is the length of
// one more header's value, the same in each (so each block after the first is a few bytes).
func synStreamBlocks(t *testing.T, n, extra int) ([][]byte, []http.Header) {
	t.Helper()
	var buf bytes.Buffer
	framer, err := spdy.NewFramer(&buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	var blocks [][]byte
	var headers []http.Header
	for i := range n {
		h := http.Header{"Streamtype": {"data"}, "Port": {strconv.Itoa(8000 + i)}, "Requestid": {strconv.Itoa(i)}}
		if extra > 0 {
			h.Set("Padding", strings.Repeat("x", extra))
		}
		buf.Reset()
		if err := framer.WriteFrame(&spdy.SynStreamFrame{StreamId: spdy.StreamId(2*i + 1), Headers: h}); err != nil {
			t.Fatal(err)
		}
		frame := buf.Bytes()
		if got := 8 + int(binary.BigEndian.Uint32(frame[4:])&0xffffff); got != len(frame) {
			t.Fatalf("a frame of %d bytes says %d", len(frame), got)
		}
		blocks = append(blocks, bytes.Clone(frame[18:]))
		headers = append(headers, h)
	}
	return blocks, headers
}

// Each header block reads as written whether the reader is made again from the blocks before it
// (an exec session's few) or kept (a port-forward's many), and none is held between reads until
// the blocks are more than maxReplayed bytes, maxReplayedBlocks, or maxReplayedHeaders
// decompressed: a client's small blocks must not make each read read again much more.
func TestHeaderBlocksReadAgain(t *testing.T) {
	for _, tc := range []struct {
		name     string
		blocks   int
		extra    int  // bytes of one more header in each
		oneRead  bool // the blocks come in one read: one reader reads them all
		wantKept bool
	}{
		{"one", 1, 0, false, false},
		{"an exec session's", 6, 0, false, false},
		{"an exec session's, in one read", 6, 0, true, false},
		{"a port-forward's many", 400, 0, false, true},
		{"more small blocks than maxReplayedBlocks", maxReplayedBlocks + 1, 0, false, true},
		{"small blocks of many headers decompressed", 3, maxHeaderBytes - 100, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blocks, want := synStreamBlocks(t, tc.blocks, tc.extra)
			var h headerBlocks
			for i, block := range blocks {
				got, err := h.read(block)
				if !tc.oneRead {
					h.idle()
				}
				if err != nil {
					t.Fatalf("block %d: %v", i, err)
				}
				if !reflect.DeepEqual(canonical(got), want[i]) { // got: names as on the wire, lower case
					t.Fatalf("block %d: got %v, want %v", i, got, want[i])
				}
				if held := h.zr != nil; held != (h.kept || tc.oneRead) || h.kept && h.past != nil {
					t.Fatalf("block %d: reader held %v, kept %v, %d blocks kept to read again", i, held, h.kept, len(h.past))
				}
			}
			if h.kept != tc.wantKept {
				t.Errorf("reader kept: %v, want %v (%d bytes of blocks)", h.kept, tc.wantKept, h.size)
			}
		})
	}
}

func canonical(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		out[http.CanonicalHeaderKey(k)] = v
	}
	return out
}

// headerStream is the zlib stream, with SPDY's dictionary, of header blocks of the pairs given,
// each followed by a sync flush when flush says so (spdystream's writer flushes each); close ends
// the stream after the last. Its bytes are then cut into SPDY header blocks as a test likes.
func headerStream(t testing.TB, blocks [][]string, flush, close bool) []byte {
	t.Helper()
	var out bytes.Buffer
	z, err := zlib.NewWriterLevelDict(&out, zlib.BestCompression, spdyHeaderDictionary)
	if err != nil {
		t.Fatal(err)
	}
	for _, pairs := range blocks {
		_ = binary.Write(z, binary.BigEndian, uint32(len(pairs)/2))
		for _, s := range pairs {
			_ = binary.Write(z, binary.BigEndian, uint32(len(s)))
			_, _ = z.Write([]byte(s))
		}
		if flush {
			_ = z.Flush()
		}
	}
	switch {
	case close:
		_ = z.Close()
	case !flush:
		_ = z.Flush()
	}
	return out.Bytes()
}

// cutAt cuts stream into blocks of the sizes given (each at least one byte); the rest is the last.
func cutAt(stream []byte, sizes []byte) [][]byte {
	var blocks [][]byte
	for _, n := range sizes {
		k := min(int(n)+1, len(stream))
		if k == 0 {
			break
		}
		blocks, stream = append(blocks, stream[:k]), stream[k:]
	}
	if len(stream) > 0 {
		blocks = append(blocks, stream)
	}
	return blocks
}

// readHeaderBlocks reads blocks as a SYN_STREAM's header blocks: with a new reader for each
// read (replay), or one reader throughout. Each result is the block's headers or "error"; none
// after the first error, after which the direction reads no more.
func readHeaderBlocks(blocks [][]byte, replay bool) []string {
	var h headerBlocks
	var out []string
	for _, b := range blocks {
		got, err := h.read(b)
		if replay {
			h.idle()
		}
		for k := range got {
			if invalidSynStreamHeaders[http.CanonicalHeaderKey(k)] {
				err = fmt.Errorf("header %q", k)
			}
		}
		if err != nil {
			return append(out, "error")
		}
		out = append(out, fmt.Sprint(canonical(got)))
	}
	return out
}

// spdystreamHeaderBlocks reads blocks as spdystream's framer reads SYN_STREAMs that carry them.
func spdystreamHeaderBlocks(t testing.TB, blocks [][]byte) []string {
	var wire []byte
	for i, b := range blocks {
		wire = binary.BigEndian.AppendUint16(wire, 0x8003)
		wire = binary.BigEndian.AppendUint16(wire, uint16(spdy.TypeSynStream))
		wire = binary.BigEndian.AppendUint32(wire, uint32(10+len(b)))
		wire = binary.BigEndian.AppendUint32(wire, uint32(2*i+1))
		wire = append(wire, 0, 0, 0, 0, 0, 0)
		wire = append(wire, b...)
	}
	framer, err := spdy.NewFramer(io.Discard, bytes.NewReader(wire))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for range blocks {
		frame, err := framer.ReadFrame()
		if err != nil {
			return append(out, "error")
		}
		out = append(out, fmt.Sprint(frame.(*spdy.SynStreamFrame).Headers))
	}
	return out
}

// kubectlish are the header blocks of an exec session's streams, as kubectl opens them.
var kubectlish = [][]string{{"streamtype", "error"}, {"streamtype", "stdin"}, {"streamtype", "stdout"},
	{"streamtype", "resize"}, {"streamtype", "data", "port", "8080", "requestid", "0"}}

// FuzzHeaderBlocksReadAgain: header blocks read by a new reader each time, after the blocks
// before them read again, read as they do by one reader; and as spdystream's framer reads them
// (exec-proxy may refuse more). Blocks may end anywhere in the zlib stream: mid deflate block,
// after a sync flush, with bytes after the headers, after the stream's end.
func FuzzHeaderBlocksReadAgain(f *testing.F) {
	flushed := headerStream(f, kubectlish, true, false)
	var ends []int // of each header block's sync flush in flushed
	for i := range kubectlish {
		ends = append(ends, len(headerStream(f, kubectlish[:i+1], true, false)))
	}
	lengths := func(ends []int) []byte { // cutAt's sizes of blocks that end at ends
		var sizes []byte
		for i, e := range ends {
			if i > 0 {
				e -= ends[i-1]
			}
			sizes = append(sizes, byte(e-1))
		}
		return sizes
	}
	var early []int // each block's sync flush (its empty stored block's LEN and NLEN) in the next block
	for _, e := range ends[:len(ends)-1] {
		early = append(early, e-4)
	}
	first := flushed[:ends[0]:ends[0]]
	var stored []int // ends, with an empty stored block added to the first block
	for _, e := range ends {
		stored = append(stored, e+5)
	}
	seeds := []struct {
		stream []byte
		sizes  []byte
	}{
		{flushed, lengths(ends)},                                                            // as kubectl writes them
		{flushed, lengths(early)},                                                           // each block ends inside its sync flush's stored block
		{flushed, []byte{5, 5, 5, 5, 5, 5, 5}},                                              // cut anywhere
		{headerStream(f, kubectlish, false, false), lengths(ends)},                          // no flush between headers
		{headerStream(f, kubectlish, true, true), lengths(ends)},                            // the stream ends in the last block
		{append(headerStream(f, kubectlish[:1], true, true), flushed...), nil},              // bytes after the stream's end
		{append(append(first, 0, 0, 0, 0xff, 0xff), flushed[ends[0]:]...), lengths(stored)}, // an empty stored block after the first
		{append(first, 0xff), nil},                                                          // a byte after the headers
		{flushed, make([]byte, 200)},                                                        // blocks of one byte
	}
	for _, s := range seeds {
		f.Add(s.stream, s.sizes)
	}
	f.Fuzz(func(t *testing.T, stream, sizes []byte) {
		blocks := cutAt(stream, sizes)
		one, again := readHeaderBlocks(blocks, false), readHeaderBlocks(blocks, true)
		if !slices.Equal(one, again) {
			t.Fatalf("one reader read %q, a reader made again each time %q", one, again)
		}
		theirs := spdystreamHeaderBlocks(t, blocks)
		for i, h := range one {
			if h == "error" {
				break // exec-proxy refuses: the kubelet reads no more
			}
			if i >= len(theirs) || theirs[i] != h {
				t.Fatalf("block %d: exec-proxy read %q, spdystream %q", i, one, theirs)
			}
		}
	})
}
