package clientconn_test

import (
	"net"
	"testing"

	"github.com/exec-proxy/exec-proxy/pkg/proxy/clientconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/internal/proxytest"
)

// discardConn takes every write.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkSPDYRelayWrite is the SPDY relay's write to the client of 32 KiB stdout DATA frames,
// as read in pieces: a joinable session follows the frames (for notices), others do not.
func BenchmarkSPDYRelayWrite(b *testing.B) {
	frame := make([]byte, 8+32<<10)
	frame[5], frame[6], frame[7] = 0, 0x80, 0 // 32 KiB of body
	for _, joinable := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "joinable"}[joinable], func(b *testing.B) {
			c := clientconn.NewConn(discardConn{}, proxytest.NewSession(b), clientconn.Options{Coalesce: true, Joinable: joinable})
			if _, err := c.Write([]byte(spdyHead)); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				for p := frame; len(p) > 0; p = p[min(len(p), 4096):] { // as a 4 KiB read buffer passes it
					if _, err := c.Write(p[:min(len(p), 4096)]); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
