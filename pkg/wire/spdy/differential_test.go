package spdy

import (
	"bytes"
	"io"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/moby/spdystream/spdy"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
	"github.com/exec-proxy/exec-proxy/pkg/wire/wiretest"
)

// spdystreamRead reads a client's bytes as the kubelet does: spdystream's own Framer for the
// frames, and spdystream's connection (connection.go: validateStreamId, addStreamFrame,
// handleDataFrame, handleResetFrame, Serve's stop at GOAWAY) and the kubelet's stream handlers
// for which streams take data: the stream type and port are http.Header's Get of the headers the
// framer parsed.
func spdystreamRead(data []byte, shape wire.Shape) wiretest.ReadSide {
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
	var out wiretest.ReadSide
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
			if shape.PortForward {
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
				out.Stdin = append(out.Stdin, f.Data...)
			case "resize":
				resize = append(resize, f.Data...)
			case "data":
				out.Data += int64(len(f.Data))
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
	out.Resizes = wiretest.KubeletResizes(resize)
	for p := range ports {
		out.Ports = append(out.Ports, p)
	}
	slices.Sort(out.Ports)
	return out
}

// wholeSPDYFrames is the prefix of data made of whole frames: spdystream reads a frame only
// once it is whole, where exec-proxy counts DATA as it passes.
func wholeSPDYFrames(data []byte) []byte {
	n := 0
	for len(data)-n >= 8 {
		end := n + 8 + BodyLen(data[n:n+8])
		if end > len(data) {
			break
		}
		n = end
	}
	return data[:n]
}

var fuzzShapes = []wire.Shape{
	{Known: true, Stdin: true, Stdout: true, Stderr: true, TTY: true},
	{Known: true, Stdout: true},
	{Known: true, PortForward: true, Ports: []int32{80}},
	{Known: true, PortForward: true},
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
		o := &wiretest.Observer{Record: true}
		ours, refused := wiretest.ClientRead(t, NewFrameReader("v4.channel.k8s.io", shape, o), o, data, int(split))
		if refused {
			return // refusing is always allowed: the session ends before the kubelet reads it
		}
		theirs := spdystreamRead(data, shape)
		if !bytes.Equal(ours.Stdin, theirs.Stdin) || ours.Data != theirs.Data || ours.Resizes != theirs.Resizes ||
			(shape.PortForward && !reflect.DeepEqual(ours.Ports, theirs.Ports)) {
			t.Fatalf("exec-proxy read %+v, spdystream %+v", ours, theirs)
		}
	})
}
