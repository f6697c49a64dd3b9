package spdy

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"reflect"
	"strconv"
	"testing"

	"github.com/moby/spdystream/spdy"
)

// synStreamBlocks are the header blocks of n SYN_STREAMs as spdystream's framer writes them (one
// zlib stream across them), with the headers each carries.
func synStreamBlocks(t *testing.T, n int) ([][]byte, []http.Header) {
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
// the blocks are more than maxReplayed bytes.
func TestHeaderBlocksReadAgain(t *testing.T) {
	for _, tc := range []struct {
		name     string
		blocks   int
		oneRead  bool // the blocks come in one read: one reader reads them all
		wantKept bool
	}{
		{"one", 1, false, false},
		{"an exec session's", 6, false, false},
		{"an exec session's, in one read", 6, true, false},
		{"a port-forward's many", 400, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blocks, want := synStreamBlocks(t, tc.blocks)
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
