package holdback

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

var (
	ping = []byte{0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1}
	data = []byte{0, 0, 0, 1, 0, 0, 0, 2, 'h', 'i'} // DATA, stream 1
)

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestPingFollower(t *testing.T) {
	cases := []struct {
		name   string
		writes [][]byte
		want   []bool // per write: only PING frames
	}{
		{"a PING", [][]byte{ping}, []bool{true}},
		{"a PING as spdystream writes it", [][]byte{ping[:4], ping[4:8], ping[8:]}, []bool{true, true, true}},
		{"a header too short to tell", [][]byte{ping[:2], ping[2:]}, []bool{true, true}},
		{"data", [][]byte{data}, []bool{false}},
		{"a PING, then data", [][]byte{cat(ping, data)}, []bool{false}},
		{"data's first byte decides", [][]byte{data[:1], data[1:]}, []bool{false, false}},
		{"data then a PING", [][]byte{data, ping}, []bool{false, true}},
		{"another control frame (GOAWAY)", [][]byte{{0x80, 3, 0, 7, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0}}, []bool{false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var f pingFollower
			for i, w := range tc.writes {
				if got := f.follow(w); got != tc.want[i] {
					t.Errorf("write %d (%x): only PINGs %v, want %v", i, w, got, tc.want[i])
				}
			}
		})
	}
}

// lockedBuffer is the kubelet's side of a Writer.
type lockedBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Write(p)
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (b *lockedBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.b.Bytes()...)
}

func TestWriter(t *testing.T) {
	defer goleak.VerifyNone(t)
	cases := []struct {
		name string
		// then: what happens after the PING is written while the kubelet's socket is not drained
		then func(w *Writer, r *Reading)
		want []byte
	}{
		{"input goes at once, after the held PING", func(w *Writer, _ *Reading) { _, _ = w.Write(data) }, cat(ping, data)},
		{"the PING goes once reading caught up", func(_ *Writer, r *Reading) { r.set(true) }, ping},
		{"a closed connection takes none", func(_ *Writer, r *Reading) { r.close() }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReading()
			r.set(false) // output came, and exec-proxy has not read on since
			out := &lockedBuffer{wrote: make(chan struct{}, 1)}
			w := NewWriter(out, r)
			if _, err := w.Write(ping); err != nil {
				t.Fatal(err)
			}
			if got := out.bytes(); len(got) != 0 {
				t.Fatalf("the PING went while the kubelet may hold unread output: %x", got)
			}
			tc.then(w, r)
			if tc.want != nil && len(out.bytes()) < len(tc.want) {
				<-out.wrote
			}
			r.close() // the flusher ends
			w.mu.Lock()
			flushing := w.flushing
			w.mu.Unlock()
			for flushing {
				w.mu.Lock()
				flushing = w.flushing
				w.mu.Unlock()
			}
			if got := out.bytes(); !bytes.Equal(got, tc.want) {
				t.Errorf("the kubelet got %x, want %x", got, tc.want)
			}
		})
	}
}

// TestConnTellsDrained: a read that finds the socket empty says so; one that returns data says
// the kubelet may have more.
func TestConnTellsDrained(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	r := NewReading()
	c := NewConn(raw, r)
	defer c.Close()
	if _, err := peer.Write([]byte("output")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if r.Drained() {
		t.Error("drained right after a read returned output")
	}
	done := make(chan error, 1)
	go func() { _, err := c.Read(buf); done <- err }()
	<-r.caughtUp() // the read found the socket empty
	_ = peer.Close()
	if err := <-done; err != io.EOF {
		t.Errorf("read after the peer closed: %v, want EOF", err)
	}
	if !r.Drained() {
		t.Error("not drained at the end of the stream")
	}
}
