package proxy

import (
	"bytes"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"

	"github.com/exec-proxy/exec-proxy/pkg/recording/recordingtest"
)

// The client's WebSocket frames are read as x/net/websocket and wsstream read them: every data
// frame is a message whose first byte is its channel, continuation or not; only the channels the
// kubelet reads count; what the server would refuse or stop at is refused or not read.
func TestWSClientMessages(t *testing.T) {
	mask := []byte{0x11, 0x22, 0x33, 0x44}
	stdin := sessionShape{known: true, stdin: true}
	b64 := func(ch byte, s string) []byte {
		return append([]byte{'0' + ch}, base64.StdEncoding.EncodeToString([]byte(s))...)
	}
	cases := []struct {
		name     string
		protocol string
		shape    sessionShape
		frames   [][]byte
		streams  map[string]int64
		recorded string // stdin recorded
		refused  string
	}{
		{"a continuation frame is a message with its own channel", "v5.channel.k8s.io", stdin,
			[][]byte{wsFrame(false, 2, channelMsg(0, "ls\n"), mask), wsFrame(true, 0, channelMsg(0, "pwd\n"), mask), wsFrame(true, 0, channelMsg(1, "\x1b[2Jforged"), mask)},
			map[string]int64{"stdin": 7}, "ls\npwd\n", ""},
		{"the client's stdout is not the kubelet's", "v5.channel.k8s.io", stdin,
			[][]byte{wsFrame(true, 2, channelMsg(1, "fake output"), mask), wsFrame(true, 2, channelMsg(2, "fake"), mask)},
			map[string]int64{}, "", ""},
		{"a text frame carries stdin too", "v4.channel.k8s.io", stdin,
			[][]byte{wsFrame(true, 1, channelMsg(0, "abc"), mask)}, map[string]int64{"stdin": 3}, "abc", ""},
		{"stdin not asked for is not read", "v5.channel.k8s.io", sessionShape{known: true},
			[][]byte{wsFrame(true, 2, channelMsg(0, "abc"), mask)}, map[string]int64{}, "", ""},
		{"stdin after the close signal is dropped", "v5.channel.k8s.io", stdin,
			[][]byte{wsFrame(true, 2, channelMsg(0, "a"), mask), wsFrame(true, 2, []byte{255, 0}, mask), wsFrame(true, 2, channelMsg(0, "b"), mask)},
			map[string]int64{"stdin": 1}, "a", ""},
		{"a close signal of three bytes", "v5.channel.k8s.io", stdin,
			[][]byte{wsFrame(true, 2, []byte{255, 0, 0}, mask)}, map[string]int64{}, "", "close signal of 3 bytes"},
		{"a close signal for a channel wsstream has not", "v5.channel.k8s.io", stdin,
			[][]byte{wsFrame(true, 2, []byte{255, 9}, mask)}, map[string]int64{}, "", "close signal"},
		{"nothing after a close frame", "v5.channel.k8s.io", stdin,
			[][]byte{wsFrame(true, 8, nil, mask), wsFrame(true, 2, channelMsg(0, "unread"), mask)}, map[string]int64{}, "", ""},
		{"a 64-bit length with its top bit set", "v5.channel.k8s.io", stdin,
			[][]byte{{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 2, 1, 2, 3, 4}}, map[string]int64{}, "", "top bit"},
		{"a frame over x/net/websocket's limit", "v5.channel.k8s.io", stdin,
			[][]byte{{0x82, 0xff, 0, 0, 0, 0, 2, 0, 0, 1, 1, 2, 3, 4}}, map[string]int64{}, "", "exec-proxy takes from a client"},
		{"a frame over exec-proxy's limit, which x/net/websocket would hold whole", "v5.channel.k8s.io", stdin,
			[][]byte{{0x82, 0xff, 0, 0, 0, 0, 0, 0x04, 0, 1, 1, 2, 3, 4}}, map[string]int64{}, "", "exec-proxy takes from a client"},
		{"reserved bits", "v5.channel.k8s.io", stdin,
			[][]byte{wsFrame(true, 0x42, channelMsg(0, "a"), mask)}, map[string]int64{}, "", "reserved bits"},
		{"base64: decoded bytes count", "v4.base64.channel.k8s.io", stdin,
			[][]byte{wsFrame(true, 1, b64(0, "hello"), mask)}, map[string]int64{"stdin": 5}, "hello", ""},
		{"base64: a message that is not base64 is dropped", "v4.base64.channel.k8s.io", stdin,
			[][]byte{wsFrame(true, 1, []byte("0not base64!"), mask)}, map[string]int64{}, "", ""},
		{"port-forward: the data channels of the query's ports", "v4.channel.k8s.io", sessionShape{known: true, portForward: true, ports: []int32{80, 443}},
			[][]byte{wsFrame(true, 2, channelMsg(0, "GET"), mask), wsFrame(true, 2, channelMsg(2, "TLS"), mask), wsFrame(true, 2, channelMsg(1, "err"), mask), wsFrame(true, 2, channelMsg(4, "none"), mask)},
			map[string]int64{"data": 6}, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stats := newStreamStats()
			stats.shape = tc.shape
			rec := &recordingtest.Sink{RecordStdin: true}
			stats.recording.Store(rec)
			var refused string
			stats.onClientProtocolError = func(why string) { refused = why }
			s := newSkimmer("websocket", tc.protocol, stats)
			feedSplit(s.fromClient, bytes.Join(tc.frames, nil), 3)
			if (tc.refused == "") != (refused == "") || !strings.Contains(refused, tc.refused) {
				t.Errorf("protocol error %q, want %q", refused, tc.refused)
			}
			if got, _, _ := stats.result(); !reflect.DeepEqual(got, tc.streams) {
				t.Errorf("bytes %v, want %v", got, tc.streams)
			}
			var in strings.Builder
			for _, ev := range rec.Events() {
				if ev.Kind == "i" {
					in.WriteString(ev.Data)
				} else if ev.Kind == "o" {
					t.Errorf("recorded output %q", ev.Data)
				}
			}
			if in.String() != tc.recorded {
				t.Errorf("recorded stdin %q, want %q", in.String(), tc.recorded)
			}
		})
	}
}

// Resizes over WebSocket are one stream, as over SPDY: a value split across messages is one.
func TestWSResizeStream(t *testing.T) {
	mask := []byte{1, 2, 3, 4}
	stats := newStreamStats()
	var refused string
	stats.onClientProtocolError = func(why string) { refused = why }
	s := newSkimmer("websocket", "v5.channel.k8s.io", stats)
	s.fromClient(wsFrame(true, 2, channelMsg(4, `{"Width":80,`), mask))
	s.fromClient(wsFrame(true, 2, channelMsg(4, `"Height":24}`), mask))
	s.fromClient(wsFrame(true, 2, channelMsg(4, `{"Pad":"`+strings.Repeat("x", maxResizeValue)), mask))
	if _, resizes, _ := stats.result(); resizes != 1 || !strings.Contains(refused, "resize message of over") {
		t.Errorf("%d resizes, protocol error %q; want 1 and the resize bound", resizes, refused)
	}
}

// Port-forward tunnelled over WebSocket is read by gorilla/websocket: it fails on a text message.
func TestWSTunnelFrames(t *testing.T) {
	mask := []byte{1, 2, 3, 4}
	stats := newStreamStats()
	var refused string
	stats.onClientProtocolError = func(why string) { refused = why }
	s := newSkimmer("websocket", "SPDY/3.1+portforward.k8s.io", stats)
	s.fromClient(wsFrame(true, 1, []byte("text"), mask))
	if !strings.Contains(refused, "text message") {
		t.Errorf("protocol error %q", refused)
	}
}
