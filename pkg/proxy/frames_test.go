package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"
)

// spdyDataFrame is a data frame of stream 1 with n bytes of payload, as spdystream writes it: two
// 4-byte header fields, then the data.
func spdyDataFrame(n int) [][]byte {
	streamID, flagsLen := make([]byte, 4), make([]byte, 4)
	binary.BigEndian.PutUint32(streamID, 1)
	binary.BigEndian.PutUint32(flagsLen, uint32(n))
	return [][]byte{streamID, flagsLen, bytes.Repeat([]byte{'x'}, n)}
}

// chunkReader returns its chunks one read each (as a pipe does), then err (EOF when nil).
type chunkReader struct {
	chunks [][]byte
	err    error
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	if r.chunks[0] = r.chunks[0][n:]; len(r.chunks[0]) == 0 {
		r.chunks = r.chunks[1:]
	}
	return n, nil
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

func TestCopyWholeFrames(t *testing.T) {
	frames := func(sizes ...int) [][]byte {
		var out [][]byte
		for _, n := range sizes {
			out = append(out, spdyDataFrame(n)...)
		}
		return out
	}
	cases := []struct {
		name   string
		chunks [][]byte
		err    error
		want   []int
	}{
		{"a window update's size is one write", frames(8), nil, []int{16}},
		{"a keystroke", frames(1), nil, []int{9}},
		{"frames one write each", frames(100, 32<<10, 5), nil, []int{108, 32<<10 + 8, 13}},
		{"a frame longer than the buffer is cut at its size", frames(100 << 10), nil, []int{64 << 10, 100<<10 + 8 - 64<<10}},
		{"a frame cut short by EOF: what came", [][]byte{spdyDataFrame(10)[0], spdyDataFrame(10)[1], []byte("abc")}, nil, []int{11}},
		{"an error ends it after what came", frames(3), errors.New("reset"), []int{11}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var sent bytes.Buffer
			for _, c := range tc.chunks {
				sent.Write(c)
			}
			var dst writeSizes
			n, err := copyWholeFrames(&dst, &chunkReader{chunks: tc.chunks, err: tc.err})
			if !errors.Is(err, tc.err) || n != int64(sent.Len()) || !bytes.Equal(dst.all.Bytes(), sent.Bytes()) {
				t.Fatalf("copied %d of %d (same bytes: %v), error %v, want %v", n, sent.Len(), bytes.Equal(dst.all.Bytes(), sent.Bytes()), err, tc.err)
			}
			if !reflect.DeepEqual(dst.sizes, tc.want) {
				t.Errorf("writes %v, want %v", dst.sizes, tc.want)
			}
		})
	}
}

func TestCopyWholeFramesWriteError(t *testing.T) {
	broken := errors.New("broken pipe")
	n, err := copyWholeFrames(failingWriter{broken}, &chunkReader{chunks: spdyDataFrame(4)})
	if !errors.Is(err, broken) || n != 0 {
		t.Errorf("got %d, %v; want the writer's error", n, err)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }
