package websocket

import (
	"bytes"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
	"github.com/exec-proxy/exec-proxy/pkg/wire/wiretest"
)

var (
	wsFrame    = wiretest.WSFrame
	channelMsg = wiretest.ChannelMsg
)

const exit3 = `{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}`

func TestFrameReader(t *testing.T) {
	mask := []byte{0x11, 0x22, 0x33, 0x44}
	big := string(bytes.Repeat([]byte("o"), 70000)) // a 64-bit length
	cases := []struct {
		name       string
		protocol   string
		fromClient [][]byte
		toClient   [][]byte
		streams    map[string]int64
		resizes    int
		exitCode   string
	}{
		{"exit 0", "v5.channel.k8s.io", nil,
			[][]byte{wsFrame(true, 2, channelMsg(1, "hello\n"), nil), wsFrame(true, 2, channelMsg(3, `{"metadata":{},"status":"Success"}`), nil)},
			map[string]int64{"stdout": 6}, 0, "0"},
		{"exit 3 split across writes", "v5.channel.k8s.io", nil,
			splitEvery(wsFrame(true, 2, channelMsg(3, exit3), nil), 3), map[string]int64{}, 0, "3"},
		{"masked stdin and resizes", "v5.channel.k8s.io",
			[][]byte{wsFrame(true, 2, channelMsg(0, "typed"), mask), wsFrame(true, 2, channelMsg(4, `{"Width":80,"Height":24}`), mask),
				wsFrame(true, 2, channelMsg(4, `{"Width":90,"Height":24}`), mask), wsFrame(true, 9, []byte("ping"), mask)},
			[][]byte{wsFrame(true, 2, channelMsg(3, `{"metadata":{},"status":"Success"}`), nil)},
			map[string]int64{"stdin": 5}, 2, "0"},
		{"each frame a message of its own, and a big frame", "v5.channel.k8s.io", nil,
			[][]byte{wsFrame(false, 2, channelMsg(2, "err"), nil), wsFrame(true, 0, channelMsg(2, "or"), nil), wsFrame(true, 2, channelMsg(1, big), nil)},
			map[string]int64{"stderr": 5, "stdout": 70000}, 0, "unknown: the session ended without an exit status"},
		{"base64 protocol", "v4.base64.channel.k8s.io", nil,
			[][]byte{wsFrame(true, 1, append([]byte{'1'}, base64.StdEncoding.EncodeToString([]byte("hi"))...), nil),
				wsFrame(true, 1, append([]byte{'3'}, base64.StdEncoding.EncodeToString([]byte(exit3))...), nil)},
			map[string]int64{"stdout": 2}, 0, "3"}, // decoded, as wsstream writes it
		{"an error that is no exit", "v5.channel.k8s.io", nil,
			[][]byte{wsFrame(true, 2, channelMsg(3, `{"metadata":{},"status":"Failure","message":"container not found"}`), nil)},
			map[string]int64{}, 0, "unknown: the kubelet reported an error: container not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := &wiretest.Observer{}
			s := NewFrameReader(tc.protocol, wire.Shape{}, o)
			for _, p := range tc.fromClient {
				s.FromClient(p)
			}
			for _, p := range tc.toClient {
				s.ToClient(p)
			}
			s.Close()
			streams, resizes, code := o.Result()
			if !reflect.DeepEqual(streams, tc.streams) || resizes != tc.resizes || code != tc.exitCode {
				t.Errorf("got %v, %d resizes, exit %q; want %v, %d, %q", streams, resizes, code, tc.streams, tc.resizes, tc.exitCode)
			}
		})
	}
}

func splitEvery(p []byte, n int) [][]byte {
	var out [][]byte
	for len(p) > n {
		out, p = append(out, p[:n]), p[n:]
	}
	return append(out, p)
}

// FuzzWSFrameReader: any bytes, in any split, never panic or hang the reader.
func FuzzWSFrameReader(f *testing.F) {
	f.Add(wsFrame(true, 2, channelMsg(3, exit3), nil), 5)
	f.Add(wsFrame(false, 2, channelMsg(1, "x"), []byte{1, 2, 3, 4}), 1)
	f.Add([]byte{0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 2)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		s := NewFrameReader("v5.channel.k8s.io", wire.Shape{}, &wiretest.Observer{})
		for _, p := range splitEvery(data, max(split%64, 1)) {
			s.ToClient(p)
			s.FromClient(p)
		}
		s.Close()
	})
}

// A client's WebSocket frame must be masked and of a defined opcode; the server's are not masked.
func TestWSClientProtocolError(t *testing.T) {
	mask := []byte{1, 2, 3, 4}
	cases := []struct {
		name                 string
		fromClient, toClient []byte
		want                 string
	}{
		{"masked client, unmasked server", wsFrame(true, 2, channelMsg(0, "in"), mask), wsFrame(true, 2, channelMsg(1, "out"), nil), ""},
		{"unmasked client frame", wsFrame(true, 2, channelMsg(0, "in"), nil), nil, "an unmasked frame"},
		{"reserved opcode", wsFrame(true, 5, []byte("x"), mask), nil, "a frame of opcode 5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := &wiretest.Observer{}
			s := NewFrameReader("v5.channel.k8s.io", wire.Shape{}, o)
			s.FromClient(tc.fromClient)
			s.ToClient(tc.toClient)
			if got := o.Refused(); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("protocol error %q, want %q", got, tc.want)
			}
		})
	}
}
