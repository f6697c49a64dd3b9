package proxy

import (
	"bytes"
	"context"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
	"github.com/exec-proxy/exec-proxy/pkg/wire/tlsrecord"
	"github.com/exec-proxy/exec-proxy/pkg/wire/websocket"
)

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
			c := &sessionConn{Conn: dst, s: s, frames: &wire.FrameWriter{W: tlsrecord.Writer{Conn: dst}, Cut: &websocket.FrameCutter{}}}
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

// writeSizes records the size of each write.
type writeSizes struct {
	sizes []int
	all   bytes.Buffer
}

func (w *writeSizes) Write(p []byte) (int, error) {
	w.sizes = append(w.sizes, len(p))
	return w.all.Write(p)
}
