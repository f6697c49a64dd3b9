package kubeletconn

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/moby/spdystream/spdy"

	"github.com/exec-proxy/exec-proxy/internal/poll"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/clientconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/internal/proxytest"
	"github.com/exec-proxy/exec-proxy/pkg/wire"
	wirespdy "github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
	"github.com/exec-proxy/exec-proxy/pkg/wire/tlsrecord"
	"github.com/exec-proxy/exec-proxy/pkg/wire/wiretest"
)

// kubeletSide is a connection to the kubelet that keeps what is written to it.
type kubeletSide struct {
	proxytest.SizesConn
	out proxytest.LockedBuffer
}

func (c *kubeletSide) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *kubeletSide) Close() error                { return nil }

// stdinConn is a translator's connection whose translator opened a stdin stream (3) and that stdin
// goes to.
func stdinConn(t *testing.T, route *clientconn.StdinRoute) (*translatorConn, *kubeletSide, []byte) {
	var syn bytes.Buffer
	f, _ := spdy.NewFramer(&syn, nil)
	_ = f.WriteFrame(&spdy.SynStreamFrame{StreamId: 3, Headers: http.Header{"Streamtype": {"stdin"}}})
	kubelet := &kubeletSide{}
	tally := &wiretest.Observer{}
	types := wirespdy.NewFrameReader("", wire.Shape{}, tally)
	b := NewSide("n1", "127.0.0.1:10250", nil)
	l := &translatorConn{b: b, tally: tally, reader: types, streams: types, route: route, hs: handshake{sent: true},
		frames: &wire.FrameWriter{W: tlsrecord.Writer{Conn: kubelet}, Cut: &wirespdy.FrameCutter{}}, conn: kubelet,
		stop: func() bool { return true }}
	b.conns.Add(1)
	if _, err := l.Write(syn.Bytes()); err != nil {
		t.Fatal(err)
	}
	return l, kubelet, syn.Bytes()
}

// stdinData is a DATA frame of the stdin stream, as spdystream or the translator's connection
// writes it.
func stdinData(payload string) []byte {
	b := make([]byte, wirespdy.FrameHeaderLen, wirespdy.FrameHeaderLen+len(payload))
	binary.BigEndian.PutUint32(b, 3)
	binary.BigEndian.PutUint32(b[4:], uint32(len(payload)))
	return append(b, payload...)
}

// The client's first stdin message goes through the translator; the next ones, once the
// translator's copy of the first reached the kubelet, go to the kubelet directly, fragmented or
// not, text or binary, in order; the client's other frames reach wsstream as they came, a ping inside a stdin
// message and the close signal after the stdin among them. If the translator's connection
// ends first, stdin goes through the translator.
func TestStdinFilter(t *testing.T) {
	mask := []byte{0x11, 0x22, 0x33, 0x44}
	resize := wiretest.WSFrame(true, 2, wiretest.ChannelMsg(4, `{"Width":80,"Height":24}`), mask)
	first := wiretest.WSFrame(true, 2, wiretest.ChannelMsg(0, "first\n"), mask)
	big := string(bytes.Repeat([]byte("b"), directChunk+5))
	// x/net/websocket reads every data frame as a message with its channel: continuation or text.
	second := append(wiretest.WSFrame(false, 2, wiretest.ChannelMsg(0, "sec"), mask), wiretest.WSFrame(true, 9, nil, mask)...)
	second = append(second, wiretest.WSFrame(false, 0, wiretest.ChannelMsg(0, "ond\n"), mask)...)
	forged := wiretest.WSFrame(true, 0, wiretest.ChannelMsg(1, "not stdin"), mask)
	second = append(second, forged...)
	second = append(second, wiretest.WSFrame(true, 1, wiretest.ChannelMsg(0, big), mask)...)
	closing := wiretest.WSFrame(true, 2, []byte{255, 0}, mask)
	client := bytes.Join([][]byte{resize, first, second, closing}, nil)

	cases := []struct {
		name         string
		endConn      bool
		wantWSStream []byte
		wantKubelet  []byte
	}{
		{"direct after the first", false,
			bytes.Join([][]byte{resize, first, wiretest.WSFrame(true, 9, nil, mask), forged, closing}, nil),
			bytes.Join([][]byte{stdinData("first\n"), stdinData("sec"), stdinData("ond\n"),
				stdinData(big[:directChunk+3]), stdinData(big[directChunk+3:])}, nil)},
		{"the translator's connection ends", true, client, stdinData("first\n")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := clientconn.NewConn(&proxytest.ReadConn{R: bytes.NewReader(client)}, proxytest.NewSession(t),
				clientconn.Options{DirectStdin: true})
			conn, kubelet, syn := stdinConn(t, c.StdinRoute())

			var wsstream proxytest.LockedBuffer
			done := make(chan error)
			go func() {
				_, err := io.Copy(&wsstream, c)
				done <- err
			}()
			// wsstream has the first message; its translator has not written it to the kubelet.
			poll.Until(t, func() bool { return len(wsstream.Bytes()) >= len(resize)+len(first) })
			time.Sleep(20 * time.Millisecond)
			if got := kubelet.out.Bytes(); len(got) != len(syn) {
				t.Fatalf("the kubelet got %d bytes before the translator wrote the first stdin", len(got))
			}
			if tc.endConn {
				_ = conn.Close()
			}
			if _, err := conn.Write(stdinData("first\n")); err != nil && !tc.endConn {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := wsstream.Bytes(); !bytes.Equal(got, tc.wantWSStream) {
				t.Errorf("wsstream read %d bytes %.60q, want %d %.60q", len(got), got, len(tc.wantWSStream), tc.wantWSStream)
			}
			if got, want := kubelet.out.Bytes(), append(syn, tc.wantKubelet...); !bytes.Equal(got, want) {
				t.Errorf("the kubelet got %d bytes %.80q, want %d %.80q", len(got), got, len(want), want)
			}
		})
	}
}
