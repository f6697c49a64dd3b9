package websocket

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/streaming/pkg/httpstream/wsstream"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
	"github.com/exec-proxy/exec-proxy/pkg/wire/wiretest"
)

// wsServe reads a client's frames as the kubelet (or the stream translator) does: wsstream's Conn
// on x/net/websocket's server, with the channels the kubelet opens for shape; it returns what
// each channel the kubelet reads carried.
func wsServe(t testing.TB, protocol string, frames []byte, shape wire.Shape) wiretest.ReadSide {
	var channels []wsstream.ChannelType
	if shape.PortForward {
		for range shape.Ports {
			channels = append(channels, wsstream.ReadWriteChannel, wsstream.WriteChannel)
		}
	} else {
		stdin := wsstream.IgnoreChannel
		if shape.Stdin {
			stdin = wsstream.ReadChannel
		}
		channels = []wsstream.ChannelType{stdin, wsstream.WriteChannel, wsstream.WriteChannel, wsstream.WriteChannel, wsstream.ReadChannel}
	}
	var rwc []io.ReadWriteCloser
	var err error
	// A close frame ends wsstream's reading before the EOF: Open then races its handler and, as
	// a select picks, may say the server "finished before becoming ready". That is wsstream's own
	// race, not a reading of the frames: open again until the server is ready.
	for range 50 {
		conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
			protocol: {Binary: !strings.Contains(protocol, "base64"), Channels: channels},
		})
		req := httptest.NewRequest(http.MethodGet, "/exec", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.Header.Set("Sec-WebSocket-Protocol", protocol)
		// The frames end only once Open returned: a server done before Open looked would be an error.
		opened := make(chan struct{})
		w := &hijackWriter{ResponseRecorder: httptest.NewRecorder(), frames: io.MultiReader(bytes.NewReader(frames), gate(opened))}
		_, rwc, err = conn.Open(w, req)
		close(opened)
		if err == nil || !strings.Contains(err.Error(), "finished before becoming ready") {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	got := make([][]byte, len(rwc))
	var wg sync.WaitGroup
	for i, c := range rwc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = io.ReadAll(c)
		}()
	}
	wg.Wait()
	var out wiretest.ReadSide
	if shape.PortForward {
		for i := 0; i < len(got); i += 2 {
			out.Data += int64(len(got[i]))
		}
		return out
	}
	out.Stdin, out.Resizes = got[0], wiretest.KubeletResizes(got[4])
	return out
}

// hijackWriter hands x/net/websocket's server a connection that reads frames, then EOF.
type hijackWriter struct {
	*httptest.ResponseRecorder
	frames io.Reader
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := &frameConn{}
	return c, bufio.NewReadWriter(bufio.NewReader(w.frames), bufio.NewWriter(io.Discard)), nil
}

// gate reads as EOF once its channel is closed.
type gate chan struct{}

func (g gate) Read([]byte) (int, error) {
	<-g
	return 0, io.EOF
}

// frameConn is the hijacked connection: reads come from the bufio.Reader, writes go nowhere.
type frameConn struct{}

func (frameConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (frameConn) Write(p []byte) (int, error)      { return len(p), nil }
func (frameConn) Close() error                     { return nil }
func (frameConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (frameConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (frameConn) SetDeadline(time.Time) error      { return nil }
func (frameConn) SetReadDeadline(time.Time) error  { return nil }
func (frameConn) SetWriteDeadline(time.Time) error { return nil }

// wsFuzzProtocols are the exec protocols the kubelet serves that exec-proxy lets a client ask for
// (an upgrade naming none is refused).
var wsFuzzProtocols = []string{"v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io"}

// FuzzWSDifferential: the client's frames, read by exec-proxy's WebSocket reader and by wsstream
// on x/net/websocket as the kubelet and the stream translator serve them, tell the same stdin
// (bytes and content), resizes and port-forward data; or exec-proxy refuses them.
func FuzzWSDifferential(f *testing.F) {
	mask := []byte{0x11, 0x22, 0x33, 0x44}
	join := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	f.Add(join(wsFrame(false, 2, channelMsg(0, "ls\n"), mask), wsFrame(true, 0, channelMsg(1, "\x1b[2Jforged"), mask),
		wsFrame(true, 0, channelMsg(0, "pwd\n"), mask)), uint8(0), uint8(0))
	f.Add(join(wsFrame(true, 2, channelMsg(4, `{"Width":80,`), mask), wsFrame(true, 9, []byte("ping"), mask),
		wsFrame(true, 2, channelMsg(4, `"Height":24}`), mask), wsFrame(true, 2, []byte{255, 0}, mask),
		wsFrame(true, 2, channelMsg(0, "after close"), mask)), uint8(0), uint8(3))
	f.Add(join(wsFrame(true, 1, append([]byte{'0'}, base64.StdEncoding.EncodeToString([]byte("hello"))...), mask),
		wsFrame(true, 1, []byte("0not base64"), mask), wsFrame(true, 8, nil, mask), wsFrame(true, 2, channelMsg(0, "x"), mask)), uint8(2), uint8(1))
	f.Add(join(wsFrame(true, 2, channelMsg(0, "GET /"), mask), wsFrame(true, 2, channelMsg(2, "x"), mask), wsFrame(true, 2, channelMsg(1, "err"), mask)), uint8(1), uint8(2))
	f.Add([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6}, uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, which, split uint8) {
		protocol := wsFuzzProtocols[int(which)%len(wsFuzzProtocols)]
		shape := wire.Shape{Known: true, Stdin: which&0x10 == 0}
		if which&0x20 != 0 && protocol != "v5.channel.k8s.io" {
			shape = wire.Shape{Known: true, PortForward: true, Ports: []int32{80, 443}}
		}
		o := &wiretest.Observer{Record: true}
		ours, refused := wiretest.ClientRead(t, NewFrameReader(protocol, shape, o), o, data, int(split))
		if refused {
			return
		}
		theirs := wsServe(t, protocol, data, shape)
		if !bytes.Equal(ours.Stdin, theirs.Stdin) || ours.Data != theirs.Data || ours.Resizes != theirs.Resizes {
			t.Fatalf("exec-proxy read %+v, wsstream %+v", ours, theirs)
		}
	})
}
