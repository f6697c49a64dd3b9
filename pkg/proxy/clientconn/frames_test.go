package clientconn_test

import (
	"bytes"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/exec-proxy/exec-proxy/pkg/proxy/clientconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/internal/proxytest"
	"github.com/exec-proxy/exec-proxy/pkg/wire/wiretest"
)

// TestConnWritesWebSocketFramesWhole: upstream's translator writes a frame through a 4 KiB
// buffer in pieces; the client gets each frame in one write (one system call, fewer TLS records).
func TestConnWritesWebSocketFramesWhole(t *testing.T) {
	big := wiretest.WSFrame(true, 2, bytes.Repeat([]byte{'x'}, 32<<10+1), nil)
	small := wiretest.WSFrame(true, 2, []byte("\x01ok"), nil)
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
			s := proxytest.NewSession(t)
			dst := &proxytest.SizesConn{}
			c := clientconn.NewConn(dst, s, clientconn.Options{})
			head := strings.Replace(proxytest.WSHead, "websocket", tc.upgrade, 1)
			for _, w := range [][]byte{append([]byte(head), small...), big[:4096], big[4096:], small} {
				if n, err := c.Write(w); n != len(w) || err != nil {
					t.Fatalf("write: %d, %v", n, err)
				}
			}
			want := []int{len(head) + len(small), 4096, len(big) - 4096, len(small)}
			if tc.whole {
				want = []int{len(head) + len(small), len(big), len(small)}
			}
			if !reflect.DeepEqual(dst.Sizes, want) {
				t.Errorf("writes %v, want %v", dst.Sizes, want)
			}
			if got := s.BytesOut(); got != int64(len(head)+2*len(small)+len(big)) {
				t.Errorf("bytes out %d, want all that was written", got)
			}
		})
	}
}

// upgraded is a WebSocket client connection over raw, answered with a 101 (which raw gets too).
func upgraded(t *testing.T, raw net.Conn) *clientconn.Conn {
	c := clientconn.NewConn(raw, proxytest.NewSession(t), clientconn.Options{})
	if _, err := c.Write([]byte(proxytest.WSHead)); err != nil {
		t.Fatal(err)
	}
	return c
}

// A frame written directly waits for the end of a frame the translator began, and does not wait
// on a connection that closed under it.
func TestWriteFrameBetweenTranslatorFrames(t *testing.T) {
	translator := wiretest.WSFrame(true, 2, append([]byte{3}, bytes.Repeat([]byte("s"), 5000)...), nil)
	direct := wiretest.WSFrame(true, 2, []byte("\x01out"), nil)
	t.Run("waits for the frame's end", func(t *testing.T) {
		client := &proxytest.SizesConn{}
		c := upgraded(t, client)
		if _, err := c.Write(translator[:4096]); err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { done <- c.WriteFrame(direct) }()
		select {
		case err := <-done:
			t.Fatalf("written inside the translator's frame (%v)", err)
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := c.Write(translator[4096:]); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		want := append(append([]byte(proxytest.WSHead), translator...), direct...)
		if !bytes.Equal(client.All.Bytes(), want) {
			t.Errorf("the client got %d bytes, not the translator's frame then the direct one", client.All.Len())
		}
	})
	t.Run("a closed connection", func(t *testing.T) {
		server, peer := net.Pipe()
		defer peer.Close()
		go func() { _, _ = io.Copy(io.Discard, peer) }()
		c := upgraded(t, server)
		if _, err := c.Write(translator[:4096]); err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { done <- c.WriteFrame(direct) }()
		_ = c.Close()
		if err := <-done; err == nil {
			t.Error("a frame written to a closed connection")
		}
	})
}

// Frames written directly renew the idle timeout wsstream keeps on the connection, as its own
// writes do, though not at every frame.
func TestWriteFrameRenewsIdleTimeout(t *testing.T) {
	client := &proxytest.DeadlineConn{}
	c := upgraded(t, client)
	frame := wiretest.WSFrame(true, 2, []byte("\x01out"), nil)
	if err := c.WriteFrame(frame); err != nil || len(client.Deadlines) != 0 {
		t.Fatalf("without an idle timeout: %v, deadlines %v", err, client.Deadlines)
	}
	_ = c.SetDeadline(time.Now().Add(time.Hour))
	for range 3 {
		if err := c.WriteFrame(frame); err != nil {
			t.Fatal(err)
		}
	}
	if len(client.Deadlines) != 2 {
		t.Fatalf("%d deadlines set, want wsstream's and one renewal", len(client.Deadlines))
	}
	if d := time.Until(client.Deadlines[1]); d < 59*time.Minute || d > time.Hour {
		t.Errorf("renewed to %v from now, want the idle timeout", d)
	}
}
