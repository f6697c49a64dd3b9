package proxy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
)

// wsFrame builds one WebSocket frame; a mask of 4 bytes masks it, as clients must.
func wsFrame(fin bool, opcode byte, payload, mask []byte) []byte {
	var b bytes.Buffer
	first := opcode
	if fin {
		first |= 0x80
	}
	b.WriteByte(first)
	maskBit := byte(0)
	if mask != nil {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b.WriteByte(maskBit | byte(n))
	case n < 1<<16:
		b.WriteByte(maskBit | 126)
		_ = binary.Write(&b, binary.BigEndian, uint16(n))
	default:
		b.WriteByte(maskBit | 127)
		_ = binary.Write(&b, binary.BigEndian, uint64(n))
	}
	if mask == nil {
		b.Write(payload)
		return b.Bytes()
	}
	b.Write(mask)
	for i, c := range payload {
		b.WriteByte(c ^ mask[i%4])
	}
	return b.Bytes()
}

func channelMsg(ch byte, data string) []byte { return append([]byte{ch}, data...) }

const exit3 = `{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}`

func TestWSSkimmer(t *testing.T) {
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
			stats := newStreamStats()
			s := newSkimmer("websocket", tc.protocol, stats)
			for _, p := range tc.fromClient {
				s.fromClient(p)
			}
			for _, p := range tc.toClient {
				s.toClient(p)
			}
			s.close()
			streams, resizes, code := stats.result()
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

func TestSPDYSkimmerGivesUpCleanly(t *testing.T) {
	checkLeaks(t)
	cases := []struct {
		name string
		feed func(s skimmer)
		why  string
	}{
		{"garbage", func(s skimmer) { s.toClient([]byte("\x80\x03\x00\x63this is no SPDY frame at all")) }, "unknown: unreadable SPDY frames"},
		{"many frames: no hang, no leak", func(s skimmer) {
			for i := 0; i < 10000; i++ {
				s.fromClient([]byte{0, 0, 0, 1, 0, 0, 0, 0}) // empty data frames of stream 1
			}
		}, "unknown: "},
		{"nothing", func(skimmer) {}, "unknown: the session ended without an exit status"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stats := newStreamStats()
			s := newSkimmer("SPDY/3.1", "v4.channel.k8s.io", stats)
			tc.feed(s)
			s.close()
			if _, _, code := stats.result(); !bytes.HasPrefix([]byte(code), []byte(tc.why)) {
				t.Errorf("exit code %q, want %q...", code, tc.why)
			}
		})
	}
}

// FuzzWSSkimmer: any bytes, in any split, never panic or hang the reader.
func FuzzWSSkimmer(f *testing.F) {
	f.Add(wsFrame(true, 2, channelMsg(3, exit3), nil), 5)
	f.Add(wsFrame(false, 2, channelMsg(1, "x"), []byte{1, 2, 3, 4}), 1)
	f.Add([]byte{0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 2)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		s := newSkimmer("websocket", "v5.channel.k8s.io", newStreamStats())
		for _, p := range splitEvery(data, max(split%64, 1)) {
			s.toClient(p)
			s.fromClient(p)
		}
		s.close()
	})
}

// While frames are read, keep-alive pings do not hold a session open against the idle timeout;
// payload does. Where the frames are not read, every byte counts.
func TestIdleActivity(t *testing.T) {
	mask := []byte{9, 8, 7, 6}
	cases := []struct {
		name, upgrade, protocol string
		frame                   []byte
		active                  bool
	}{
		{"WebSocket ping", "websocket", "v5.channel.k8s.io", wsFrame(true, 9, nil, mask), false},
		{"WebSocket stdin", "websocket", "v5.channel.k8s.io", wsFrame(true, 2, channelMsg(0, "x"), mask), true},
		{"WebSocket resize", "websocket", "v5.channel.k8s.io", wsFrame(true, 2, channelMsg(4, `{"Width":1,"Height":1}`), mask), true},
		{"port-forward tunnel ping", "websocket", "SPDY/3.1+portforward.k8s.io", wsFrame(true, 9, nil, mask), false},
		{"protocol not read", "websocket", "example.dev/unknown", wsFrame(true, 9, nil, mask), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(context.Background(), 0)
			s.counters = byteCounters()
			s.Stdin = true
			defer s.cancel()
			head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + tc.upgrade + "\r\nSec-WebSocket-Protocol: " + tc.protocol + "\r\n\r\n"
			if _, err := s.noteResponse([]byte(head)); err != nil {
				t.Fatal(err)
			}
			s.lastActive.Store(0)
			s.skimmer().fromClient(tc.frame)
			s.countIn(len(tc.frame))
			s.skimmer().close()
			if active := s.lastActive.Load() != 0; active != tc.active {
				t.Errorf("counted as activity: %v, want %v", active, tc.active)
			}
		})
	}
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
			stats := newStreamStats()
			var got string
			stats.onClientProtocolError = func(why string) { got = why }
			s := newSkimmer("websocket", "v5.channel.k8s.io", stats)
			s.fromClient(tc.fromClient)
			s.toClient(tc.toClient)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("protocol error %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSessionShapeTTYDropsStderr: with a TTY the kubelet drops stderr and waits for one stream
// fewer, so a client's stderr stream would take stdin's place: the reader must not count it.
func TestSessionShapeTTYDropsStderr(t *testing.T) {
	s := newSession(context.Background(), 0)
	defer s.cancel()
	s.counters = byteCounters()
	s.Stdin, s.Stdout, s.Stderr, s.TTY = true, true, true, true
	if _, err := s.noteResponse([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if sh := s.stats.shape; sh.stderr || !sh.stdin || !sh.tty {
		t.Errorf("shape %+v: want stdin and a TTY, no stderr", sh)
	}
}
