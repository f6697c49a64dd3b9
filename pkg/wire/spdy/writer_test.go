package spdy

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/spdystream/spdy"
)

// read is what spdystream's framer read of a frame.
type read struct {
	kind    string
	stream  spdy.StreamId
	flags   uint8
	word    uint32 // RST_STREAM's or GOAWAY's status, PING's id
	headers http.Header
	data    string
}

func summary(f spdy.Frame) read {
	switch f := f.(type) {
	case *spdy.SynStreamFrame:
		return read{kind: "SYN_STREAM", stream: f.StreamId, flags: uint8(f.CFHeader.Flags), headers: f.Headers}
	case *spdy.DataFrame:
		return read{kind: "DATA", stream: f.StreamId, flags: uint8(f.Flags), data: string(f.Data)}
	case *spdy.RstStreamFrame:
		return read{kind: "RST_STREAM", stream: f.StreamId, word: uint32(f.Status)}
	case *spdy.PingFrame:
		return read{kind: "PING", word: f.Id}
	case *spdy.GoAwayFrame:
		return read{kind: "GOAWAY", stream: f.LastGoodStreamId, word: uint32(f.Status)}
	}
	return read{kind: "other"}
}

// Every frame the SPDY client writes is read by spdystream's own framer (the kubelet's) as the
// frame it was meant to be; the header blocks, one zlib stream across the frames, are read by a
// standard zlib reader with SPDY's dictionary too.
func TestWrittenFramesAsSpdystreamReadsThem(t *testing.T) {
	var blocks HeaderBlocks
	big := strings.Repeat("v", 70000) // over one stored block's 64 KiB
	var in bytes.Buffer
	framer, err := spdy.NewFramer(io.Discard, &in) // one framer: the header stream runs across frames
	if err != nil {
		t.Fatal(err)
	}
	var synStreams [][]byte
	for _, c := range []struct {
		name  string
		frame []byte
		want  read
	}{
		{"SYN_STREAM", AppendSynStream(nil, &blocks, 1, 0, http.Header{"Streamtype": {"error"}}),
			read{kind: "SYN_STREAM", stream: 1, headers: http.Header{"Streamtype": {"error"}}}},
		{"SYN_STREAM with FIN, two values", AppendSynStream(nil, &blocks, 3, spdy.ControlFlagFin, http.Header{"Streamtype": {"stdin"}, "Port": {"80", "81"}}),
			read{kind: "SYN_STREAM", stream: 3, flags: uint8(spdy.ControlFlagFin), headers: http.Header{"Streamtype": {"stdin"}, "Port": {"80", "81"}}}},
		{"SYN_STREAM over 64 KiB", AppendSynStream(nil, &blocks, 5, 0, http.Header{"Big": {big}}),
			read{kind: "SYN_STREAM", stream: 5, headers: http.Header{"Big": {big}}}},
		{"SYN_STREAM, no headers", AppendSynStream(nil, &blocks, 7, 0, http.Header{}),
			read{kind: "SYN_STREAM", stream: 7, headers: http.Header{}}},
		{"DATA", append(AppendDataHeader(nil, 3, false, 5), "hello"...), read{kind: "DATA", stream: 3, data: "hello"}},
		{"DATA with FIN, empty", AppendDataHeader(nil, 3, true, 0), read{kind: "DATA", stream: 3, flags: uint8(spdy.DataFlagFin)}},
		{"RST_STREAM", AppendRstStream(nil, 5, spdy.Cancel), read{kind: "RST_STREAM", stream: 5, word: uint32(spdy.Cancel)}},
		{"PING", AppendPing(nil, 7), read{kind: "PING", word: 7}},
		{"GOAWAY", AppendGoAway(nil, 0, spdy.GoAwayOK), read{kind: "GOAWAY", word: uint32(spdy.GoAwayOK)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := BodyLen(c.frame) + FrameHeaderLen; got != len(c.frame) {
				t.Fatalf("a frame of %d bytes says %d", len(c.frame), got)
			}
			in.Write(c.frame)
			f, err := framer.ReadFrame()
			if err != nil {
				t.Fatalf("spdystream's framer: %v", err)
			}
			if got := summary(f); !reflect.DeepEqual(got, c.want) {
				t.Errorf("spdystream read %+v, want %+v", got, c.want)
			}
			if in.Len() != 0 {
				t.Errorf("spdystream left %d bytes of the frame", in.Len())
			}
			if c.want.kind == "SYN_STREAM" {
				synStreams = append(synStreams, c.frame[FrameHeaderLen+10:])
			}
		})
	}
	zr, err := zlib.NewReaderDict(bytes.NewReader(bytes.Join(synStreams, nil)), spdyHeaderDictionary)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []uint32{1, 2, 1, 0} {
		var count uint32
		if err := binary.Read(zr, binary.BigEndian, &count); err != nil || count != want {
			t.Fatalf("header block %d: %d headers (%v), want %d", i, count, err, want)
		}
		for range 2 * count {
			var n uint32
			if err := binary.Read(zr, binary.BigEndian, &n); err != nil {
				t.Fatalf("header block %d: %v", i, err)
			}
			if _, err := io.CopyN(io.Discard, zr, int64(n)); err != nil {
				t.Fatalf("header block %d: %v", i, err)
			}
		}
	}
}
