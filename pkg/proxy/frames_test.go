package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"reflect"
	"strings"
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
			f := frameWriter{w: &dst, cut: &frameCutter{}}
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
	f := frameWriter{w: failingWriter{broken}, cut: &frameCutter{}}
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

func TestWSFrameCutter(t *testing.T) {
	mask := []byte{1, 2, 3, 4}
	cases := []struct {
		name   string
		frame  []byte
		pieces []int // cut points: each piece must end on a boundary only at the frame's end
	}{
		{"a short frame", wsFrame(true, 2, []byte("\x01hello"), nil), []int{1, 3}},
		{"a 16-bit length", wsFrame(true, 2, bytes.Repeat([]byte{'x'}, 32<<10+1), nil), []int{2, 3, 4096}},
		{"a 64-bit length", wsFrame(true, 2, bytes.Repeat([]byte{'x'}, 70<<10), nil), []int{5, 10, 11}},
		{"a masked frame", wsFrame(true, 2, []byte("\x00typed"), mask), []int{2, 5, 6}},
		{"a frame without payload", wsFrame(true, 9, nil, nil), []int{1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c wsFrameCutter
			from := 0
			for _, to := range append(tc.pieces, len(tc.frame)) {
				whole := c.follow(tc.frame[from:to])
				if whole != (to == len(tc.frame)) {
					t.Fatalf("after %d of %d bytes: on a boundary %v", to, len(tc.frame), whole)
				}
				from = to
			}
			if !c.follow(wsFrame(true, 10, nil, nil)) {
				t.Error("the next frame, whole, did not end on a boundary")
			}
		})
	}
}

// TestSessionConnWritesWebSocketFramesWhole: upstream's translator writes a frame through a 4 KiB
// buffer in pieces; the client gets each frame in one write (one system call, fewer TLS records).
func TestSessionConnWritesWebSocketFramesWhole(t *testing.T) {
	big := wsFrame(true, 2, bytes.Repeat([]byte{'x'}, 32<<10+1), nil)
	small := wsFrame(true, 2, []byte("\x01ok"), nil)
	cases := []struct {
		name    string
		upgrade string
		whole   bool
	}{
		{"WebSocket: frames whole", "websocket", true},
		{"SPDY: as written", "SPDY/3.1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(context.Background(), 0)
			s.counters = byteCounters()
			defer s.cancel()
			dst := &sizesConn{}
			c := &sessionConn{Conn: dst, s: s, frames: &frameWriter{w: recordsWriter{dst}, cut: &wsFrameCutter{}}}
			head := strings.Replace(wsHead, "websocket", tc.upgrade, 1)
			for _, w := range [][]byte{append([]byte(head), small...), big[:4096], big[4096:], small} {
				if n, err := c.Write(w); n != len(w) || err != nil {
					t.Fatalf("write: %d, %v", n, err)
				}
			}
			want := []int{len(head) + len(small), 4096, len(big) - 4096, len(small)}
			if tc.whole {
				want = []int{len(head) + len(small), len(big), len(small)}
			}
			if !reflect.DeepEqual(dst.sizes, want) {
				t.Errorf("writes %v, want %v", dst.sizes, want)
			}
			if got := s.BytesOut(); got != int64(len(head)+2*len(small)+len(big)) {
				t.Errorf("bytes out %d, want all that was written", got)
			}
		})
	}
}

const wsHead = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n"

// sizesConn is a connection that records the size of each write.
type sizesConn struct {
	net.Conn
	writeSizes
}

func (c *sizesConn) Write(p []byte) (int, error) { return c.writeSizes.Write(p) }
