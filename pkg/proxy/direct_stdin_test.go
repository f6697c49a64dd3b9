package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/moby/spdystream/spdy"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
	wirespdy "github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
	"github.com/exec-proxy/exec-proxy/pkg/wire/tlsrecord"
)

// lockedBuffer is a bytes.Buffer for one writer and a reader in another goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.b.Bytes()...)
}

// kubeletSide is a connection to the kubelet that keeps what is written to it.
type kubeletSide struct {
	sizesConn
	out lockedBuffer
}

func (c *kubeletSide) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *kubeletSide) Close() error                { return nil }

// stdinLeg is a kubelet leg whose translator opened a stdin stream (3) and that stdin goes to.
func stdinLeg(t *testing.T, s *Session, route *stdinRoute) (*kubeletLeg, *kubeletSide, []byte) {
	var syn bytes.Buffer
	f, _ := spdy.NewFramer(&syn, nil)
	_ = f.WriteFrame(&spdy.SynStreamFrame{StreamId: 3, Headers: http.Header{"Streamtype": {"stdin"}}})
	kubelet := &kubeletSide{}
	stats := newStreamStats()
	types := wirespdy.NewFrameReader("", wire.Shape{}, stats)
	l := &kubeletLeg{s: s, reader: types, types: types, leg: stats, route: route, sent: true,
		frames: wire.FrameWriter{W: tlsrecord.Writer{Conn: kubelet}, Cut: &wirespdy.FrameCutter{}}, backend: kubelet,
		stop: func() bool { return true }}
	s.legs.Add(1)
	if _, err := l.Write(syn.Bytes()); err != nil {
		t.Fatal(err)
	}
	return l, kubelet, syn.Bytes()
}

// stdinData is a DATA frame of the stdin stream, as spdystream or the leg writes it.
func stdinData(payload string) []byte {
	b := make([]byte, wirespdy.FrameHeaderLen, wirespdy.FrameHeaderLen+len(payload))
	binary.BigEndian.PutUint32(b, 3)
	binary.BigEndian.PutUint32(b[4:], uint32(len(payload)))
	return append(b, payload...)
}

// The client's first stdin message goes through the translator; the next ones, once the
// translator's copy of the first reached the kubelet, go to the kubelet directly, fragmented or
// not, text or binary, in order; the client's other frames reach wsstream as they came, a ping inside a stdin
// message and the close signal after the stdin among them. If the leg ends first, stdin goes
// through the translator.
func TestStdinFilter(t *testing.T) {
	mask := []byte{0x11, 0x22, 0x33, 0x44}
	resize := wsFrame(true, 2, channelMsg(4, `{"Width":80,"Height":24}`), mask)
	first := wsFrame(true, 2, channelMsg(0, "first\n"), mask)
	big := string(bytes.Repeat([]byte("b"), directChunk+5))
	// x/net/websocket reads every data frame as a message with its channel: continuation or text.
	second := append(wsFrame(false, 2, channelMsg(0, "sec"), mask), wsFrame(true, 9, nil, mask)...)
	second = append(second, wsFrame(false, 0, channelMsg(0, "ond\n"), mask)...)
	forged := wsFrame(true, 0, channelMsg(1, "not stdin"), mask)
	second = append(second, forged...)
	second = append(second, wsFrame(true, 1, channelMsg(0, big), mask)...)
	closing := wsFrame(true, 2, []byte{255, 0}, mask)
	client := bytes.Join([][]byte{resize, first, second, closing}, nil)

	cases := []struct {
		name         string
		endLeg       bool
		wantWSStream []byte
		wantKubelet  []byte
	}{
		{"direct after the first", false,
			bytes.Join([][]byte{resize, first, wsFrame(true, 9, nil, mask), forged, closing}, nil),
			bytes.Join([][]byte{stdinData("first\n"), stdinData("sec"), stdinData("ond\n"),
				stdinData(big[:directChunk+3]), stdinData(big[directChunk+3:])}, nil)},
		{"the leg ends", true, client, stdinData("first\n")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(context.Background(), 0)
			s.counters = byteCounters()
			defer s.cancel()
			route := newStdinRoute()
			c := &sessionConn{Conn: &readConn{r: bytes.NewReader(client)}, s: s}
			c.stdin = &stdinFilter{c: c, route: route}
			leg, kubelet, syn := stdinLeg(t, s, route)

			var wsstream lockedBuffer
			done := make(chan error)
			go func() {
				_, err := io.Copy(&wsstream, c)
				done <- err
			}()
			// wsstream has the first message; its translator has not written it to the kubelet.
			eventuallyTrue(t, func() bool { return len(wsstream.bytes()) >= len(resize)+len(first) })
			time.Sleep(20 * time.Millisecond)
			if got := kubelet.out.bytes(); len(got) != len(syn) {
				t.Fatalf("the kubelet got %d bytes before the translator wrote the first stdin", len(got))
			}
			if tc.endLeg {
				_ = leg.Close()
			}
			if _, err := leg.Write(stdinData("first\n")); err != nil && !tc.endLeg {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := wsstream.bytes(); !bytes.Equal(got, tc.wantWSStream) {
				t.Errorf("wsstream read %d bytes %.60q, want %d %.60q", len(got), got, len(tc.wantWSStream), tc.wantWSStream)
			}
			if got, want := kubelet.out.bytes(), append(syn, tc.wantKubelet...); !bytes.Equal(got, want) {
				t.Errorf("the kubelet got %d bytes %.80q, want %d %.80q", len(got), got, len(want), want)
			}
		})
	}
}

// readConn is a client connection that reads r, then io.EOF.
type readConn struct {
	sizesConn
	r io.Reader
}

func (c *readConn) Read(p []byte) (int, error) { return c.r.Read(p) }
