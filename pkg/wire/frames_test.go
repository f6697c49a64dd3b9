package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
	"github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
)

// spdyDataFrame is a data frame of stream 1 with n bytes of payload, as spdystream writes it: two
// 4-byte header fields, then the data.
func spdyDataFrame(n int) [][]byte {
	streamID, flagsLen := make([]byte, 4), make([]byte, 4)
	binary.BigEndian.PutUint32(streamID, 1)
	binary.BigEndian.PutUint32(flagsLen, uint32(n))
	return [][]byte{streamID, flagsLen, bytes.Repeat([]byte{'x'}, n)}
}

// writeSizes records the size of each write.
type writeSizes struct {
	sizes []int
	all   bytes.Buffer
}

func (w *writeSizes) Write(p []byte) (int, error) {
	w.sizes = append(w.sizes, len(p))
	return w.all.Write(p)
}

func TestFrameWriter(t *testing.T) {
	frames := func(sizes ...int) [][]byte {
		var out [][]byte
		for _, n := range sizes {
			out = append(out, spdyDataFrame(n)...)
		}
		return out
	}
	cases := []struct {
		name   string
		writes [][]byte
		want   []int
	}{
		{"a window update's size is one write", frames(8), []int{16}},
		{"a keystroke", frames(1), []int{9}},
		{"frames one write each", frames(100, 32<<10, 5), []int{108, 32<<10 + 8, 13}},
		{"frames written whole pass as they are", [][]byte{bytes.Join(frames(3, 4), nil)}, []int{23}},
		{"a frame longer than the buffer is not held", frames(100 << 10), []int{8, 100 << 10}},
		{"the start of a frame waits for its rest", [][]byte{spdyDataFrame(10)[0], spdyDataFrame(10)[1], []byte("abc")}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var sent bytes.Buffer
			var dst writeSizes
			f := wire.FrameWriter{W: &dst, Cut: &spdy.FrameCutter{}}
			for _, w := range tc.writes {
				sent.Write(w)
				if err := f.Write(w); err != nil {
					t.Fatal(err)
				}
			}
			if !reflect.DeepEqual(dst.sizes, tc.want) {
				t.Errorf("writes %v, want %v", dst.sizes, tc.want)
			}
			if tc.want != nil && !bytes.Equal(dst.all.Bytes(), sent.Bytes()) {
				t.Errorf("the bytes written differ from those given")
			}
		})
	}
}

func TestFrameWriterWriteError(t *testing.T) {
	broken := errors.New("broken pipe")
	f := wire.FrameWriter{W: failingWriter{broken}, Cut: &spdy.FrameCutter{}}
	var err error
	for _, w := range spdyDataFrame(4) {
		if err = f.Write(w); err != nil {
			break
		}
	}
	if !errors.Is(err, broken) {
		t.Errorf("got %v; want the writer's error", err)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }
