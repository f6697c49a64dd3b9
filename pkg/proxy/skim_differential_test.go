package proxy

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/spdystream/spdy"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/exec-proxy/exec-proxy/pkg/recording/recordingtest"
)

// readSide is what a session's client frames carried, as one side reads them.
type readSide struct {
	stdin   []byte
	data    int64 // port-forward
	resizes int
	ports   []int32
}

// spdystreamRead reads a client's bytes as the kubelet does: spdystream's own Framer for the
// frames, and spdystream's connection (connection.go: validateStreamId, addStreamFrame,
// handleDataFrame, handleResetFrame, Serve's stop at GOAWAY) and the kubelet's stream handlers
// for which streams take data: the stream type and port are http.Header's Get of the headers the
// framer parsed.
func spdystreamRead(data []byte, shape sessionShape) readSide {
	type stream struct {
		typ    string
		closed bool
	}
	framer, err := spdy.NewFramer(io.Discard, bytes.NewReader(data))
	if err != nil {
		panic(err)
	}
	streams := map[spdy.StreamId]*stream{}
	var next spdy.StreamId
	var out readSide
	var resize []byte
	ports := map[int32]bool{}
loop:
	for {
		frame, err := framer.ReadFrame()
		if err != nil {
			break // spdystream's Serve ends the connection on any read error
		}
		switch f := frame.(type) {
		case *spdy.SynStreamFrame:
			if f.StreamId > 0x7fffffff || f.StreamId < next { // reset, never added
				continue
			}
			next = f.StreamId + 2
			typ := f.Headers.Get("streamtype")
			if shape.portForward {
				port, err := strconv.ParseUint(f.Headers.Get("port"), 10, 16)
				if err != nil || port < 1 || (typ != "data" && typ != "error") {
					continue // httpStreamReceived refuses it: the stream is reset
				}
				ports[int32(port)] = true
			}
			streams[f.StreamId] = &stream{typ: typ, closed: f.CFHeader.Flags&spdy.ControlFlagFin != 0}
		case *spdy.DataFrame:
			st := streams[f.StreamId]
			if st == nil || st.closed {
				continue // gone away, or finished: dropped
			}
			switch st.typ {
			case "stdin":
				out.stdin = append(out.stdin, f.Data...)
			case "resize":
				resize = append(resize, f.Data...)
			case "data":
				out.data += int64(len(f.Data))
			}
			if f.Flags&spdy.DataFlagFin != 0 {
				st.closed = true
			}
		case *spdy.RstStreamFrame:
			delete(streams, f.StreamId)
		case *spdy.GoAwayFrame:
			break loop
		}
	}
	out.resizes = kubeletResizes(resize)
	for p := range ports {
		out.ports = append(out.ports, p)
	}
	slices.Sort(out.ports)
	return out
}

// kubeletResizes counts the terminal sizes the kubelet's handleResizeEvents reads of a stream.
func kubeletResizes(stream []byte) int {
	dec := json.NewDecoder(bytes.NewReader(stream))
	n := 0
	for {
		var size remotecommand.TerminalSize
		if dec.Decode(&size) != nil {
			return n
		}
		n++
	}
}

// skimmed is what exec-proxy's reader read of the same bytes; refused when it refused them.
func skimmed(t testing.TB, upgrade, protocol string, data []byte, shape sessionShape, split int) (out readSide, refused bool) {
	stats := newStreamStats()
	stats.shape = shape
	rec := &recordingtest.Sink{RecordStdin: true}
	stats.recording.Store(rec)
	stats.onClientProtocolError = func(string) { refused = true }
	s := newSkimmer(upgrade, protocol, stats)
	feedSplit(s.fromClient, data, split)
	s.close()
	for _, ev := range rec.Events() {
		if ev.Kind == "i" {
			out.stdin = append(out.stdin, ev.Data...)
		}
	}
	bytes, resizes, _ := stats.result()
	if int64(len(out.stdin)) != bytes["stdin"] {
		t.Fatalf("stdin: %d bytes counted, %d recorded", bytes["stdin"], len(out.stdin))
	}
	out.data, out.resizes, out.ports = bytes["data"], resizes, stats.forwardedPorts()
	return out, refused
}

// wholeSPDYFrames is the prefix of data made of whole frames: spdystream reads a frame only
// once it is whole, where exec-proxy counts DATA as it passes.
func wholeSPDYFrames(data []byte) []byte {
	n := 0
	for len(data)-n >= 8 {
		end := n + 8 + spdyBodyLen(data[n:n+8])
		if end > len(data) {
			break
		}
		n = end
	}
	return data[:n]
}

var fuzzShapes = []sessionShape{
	{known: true, stdin: true, stdout: true, stderr: true, tty: true},
	{known: true, stdout: true},
	{known: true, portForward: true, ports: []int32{80}},
	{known: true, portForward: true},
}

// FuzzSPDYDifferential: the client's bytes, read by exec-proxy's SPDY reader and by spdystream's
// framer and connection as the kubelet uses them, tell the same stdin (bytes and content), the
// same resizes, the same port-forward data and ports; or exec-proxy refuses them.
func FuzzSPDYDifferential(f *testing.F) {
	fromClient, _ := spdyExec(f)
	f.Add(fromClient, uint8(0), uint8(0))
	c := newSPDYClient(f)
	c.syn(1, 0, "streamtype", "stdin\x00x").data(1, false, "typed").syn(3, 0, "streamtype", "resize").
		data(3, false, `{"Width":80,`).data(3, false, `"Height":24}`).data(1, true, "!")
	f.Add(c.bytes(), uint8(0), uint8(3))
	c = newSPDYClient(f)
	c.syn(1, 0, "streamtype", "stdin", "streamtype", "stdout").data(1, false, "x").
		control(spdy.TypeRstStream, 0, []byte{0, 0, 0, 1, 0, 0, 0, 5}).data(1, false, "y")
	f.Add(c.bytes(), uint8(0), uint8(1))
	c = newSPDYClient(f)
	c.syn(1, 0, "streamtype", "error", "port", "80").syn(3, 0, "streamtype", "data", "port", "22").data(3, false, "SSH-2.0")
	f.Add(c.bytes(), uint8(2), uint8(7))
	c = newSPDYClient(f)
	c.syn(1, 0, "streamtype", "data", "port", "0080\x0022").data(1, false, "GET /").control(spdy.TypePing, 0, []byte{0, 0, 0, 1, 0, 0, 0, 0})
	f.Add(c.bytes(), uint8(3), uint8(2))
	c = newSPDYClient(f)
	c.syn(1, 0, "StreamType", "stdin").data(1, false, "x")
	f.Add(c.bytes(), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, shapeIndex, split uint8) {
		shape := fuzzShapes[int(shapeIndex)%len(fuzzShapes)]
		data = wholeSPDYFrames(data)
		ours, refused := skimmed(t, "SPDY/3.1", "v4.channel.k8s.io", data, shape, int(split))
		if refused {
			return // refusing is always allowed: the session ends before the kubelet reads it
		}
		theirs := spdystreamRead(data, shape)
		if !bytes.Equal(ours.stdin, theirs.stdin) || ours.data != theirs.data || ours.resizes != theirs.resizes ||
			(shape.portForward && !reflect.DeepEqual(ours.ports, theirs.ports)) {
			t.Fatalf("exec-proxy read %+v, spdystream %+v", ours, theirs)
		}
	})
}

// wsServe reads a client's frames as the kubelet (or the stream translator) does: wsstream's Conn
// on x/net/websocket's server, with the channels the kubelet opens for shape; it returns what
// each channel the kubelet reads carried.
func wsServe(t testing.TB, protocol string, frames []byte, shape sessionShape) readSide {
	var channels []wsstream.ChannelType
	if shape.portForward {
		for range shape.ports {
			channels = append(channels, wsstream.ReadWriteChannel, wsstream.WriteChannel)
		}
	} else {
		stdin := wsstream.IgnoreChannel
		if shape.stdin {
			stdin = wsstream.ReadChannel
		}
		channels = []wsstream.ChannelType{stdin, wsstream.WriteChannel, wsstream.WriteChannel, wsstream.WriteChannel, wsstream.ReadChannel}
	}
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
	_, rwc, err := conn.Open(w, req)
	close(opened)
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
	var out readSide
	if shape.portForward {
		for i := 0; i < len(got); i += 2 {
			out.data += int64(len(got[i]))
		}
		return out
	}
	out.stdin, out.resizes = got[0], kubeletResizes(got[4])
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
		shape := sessionShape{known: true, stdin: which&0x10 == 0}
		if which&0x20 != 0 && protocol != "v5.channel.k8s.io" {
			shape = sessionShape{known: true, portForward: true, ports: []int32{80, 443}}
		}
		ours, refused := skimmed(t, "websocket", protocol, data, shape, int(split))
		if refused {
			return
		}
		theirs := wsServe(t, protocol, data, shape)
		if !bytes.Equal(ours.stdin, theirs.stdin) || ours.data != theirs.data || ours.resizes != theirs.resizes {
			t.Fatalf("exec-proxy read %+v, wsstream %+v", ours, theirs)
		}
	})
}
