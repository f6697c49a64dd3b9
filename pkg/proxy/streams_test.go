package proxy

import (
	"bytes"
	"context"
	"net/http"
	"reflect"
	"testing"

	"github.com/moby/spdystream/spdy"

	"github.com/exec-proxy/exec-proxy/pkg/policy"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/wire/wiretest"
)

// The frames the tests write, built as in the wire packages' tests.
var (
	wsFrame    = wiretest.WSFrame
	channelMsg = wiretest.ChannelMsg
)

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
			s := testSession(t, Identity{Asked: Asked{Stdin: true}}, 0)
			head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + tc.upgrade + "\r\nSec-WebSocket-Protocol: " + tc.protocol + "\r\n\r\n"
			if _, _, err := s.answered([]byte(head)); err != nil {
				t.Fatal(err)
			}
			s.traffic.lastActive.Store(0)
			s.frameReader().FromClient(tc.frame)
			s.countIn(len(tc.frame))
			s.frameReader().Close()
			if active := s.traffic.lastActive.Load() != 0; active != tc.active {
				t.Errorf("counted as activity: %v, want %v", active, tc.active)
			}
		})
	}
}

// TestSessionShapeTTYDropsStderr: with a TTY the kubelet drops stderr and waits for one stream
// fewer, so a client's stderr stream would take stdin's place: the frame reader the session's
// answer makes refuses it, and the session ends as a client protocol error.
func TestSessionShapeTTYDropsStderr(t *testing.T) {
	for _, tty := range []bool{true, false} {
		s := testSession(t, Identity{Asked: Asked{Stdin: true, Stdout: true, Stderr: true, TTY: tty}}, 0)
		if _, _, err := s.answered([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		var syn bytes.Buffer
		f, _ := spdy.NewFramer(&syn, nil)
		for i, typ := range []string{"error", "stdin", "stdout", "stderr"} {
			_ = f.WriteFrame(&spdy.SynStreamFrame{StreamId: spdy.StreamId(2*i + 1), Headers: http.Header{"Streamtype": {typ}}})
		}
		s.frameReader().FromClient(syn.Bytes())
		if refused := s.protocolError(); refused != tty {
			t.Errorf("TTY %t: a stderr stream refused %t, want %t", tty, refused, tty)
		}
		if tty && s.EndReason() != session.ReasonProtocolError {
			t.Errorf("TTY: end reason %q, want %q", s.EndReason(), session.ReasonProtocolError)
		}
	}
}

// testSession is a session that starts without an audit or a recording, ended with t.
func testSession(t *testing.T, id Identity, maxBytesPerSec int64) *Session {
	s := newSession(context.Background(), id, policy.Decision{}, maxBytesPerSec, noStart{})
	t.Cleanup(s.cancel)
	return s
}

// noStart is a start step that writes nothing.
type noStart struct{}

func (noStart) started(*Session, string) error { return nil }

// The ports a port-forward opened streams for reach the session's record, each once, in order;
// a stream to a port the request did not name is refused.
func TestStreamStatsForwardedPorts(t *testing.T) {
	cases := []struct {
		name    string
		asked   []int32
		opened  []string
		want    []int32
		refused bool
	}{
		{"ports asked for", []int32{80, 443}, []string{"443", "80", "443"}, []int32{80, 443}, false},
		{"none asked for: any", nil, []string{"8080"}, []int32{8080}, false},
		{"a port not asked for", []int32{80}, []string{"80", "22"}, []int32{80}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := testSession(t, Identity{Kind: session.KindPortForward, Asked: Asked{Ports: tc.asked}}, 0)
			if _, _, err := s.answered([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			var syn bytes.Buffer
			f, _ := spdy.NewFramer(&syn, nil)
			for i, port := range tc.opened {
				for j, typ := range []string{"error", "data"} {
					id := spdy.StreamId(4*i + 2*j + 1)
					_ = f.WriteFrame(&spdy.SynStreamFrame{StreamId: id, Headers: http.Header{"Streamtype": {typ}, "Port": {port}}})
				}
			}
			s.frameReader().FromClient(syn.Bytes())
			if got := s.Streams().Ports; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ports %v, want %v", got, tc.want)
			}
			if s.protocolError() != tc.refused {
				t.Errorf("refused %t, want %t", s.protocolError(), tc.refused)
			}
		})
	}
}
