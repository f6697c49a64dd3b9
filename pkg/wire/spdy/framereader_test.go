package spdy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/spdystream/spdy"
	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
	"github.com/exec-proxy/exec-proxy/pkg/wire/wiretest"
)

// spdyExec is one exec session's frames, each direction with its own header compression, as
// client-go and the kubelet write them: the client opens error, stdin, stdout, stderr and resize.
func spdyExec(t testing.TB) (fromClient, toClient []byte) {
	var c, s bytes.Buffer
	cf, err := spdy.NewFramer(&c, nil)
	if err != nil {
		t.Fatal(err)
	}
	sf, err := spdy.NewFramer(&s, nil)
	if err != nil {
		t.Fatal(err)
	}
	write := func(f *spdy.Framer, frame spdy.Frame) {
		if err := f.WriteFrame(frame); err != nil {
			t.Fatal(err)
		}
	}
	for i, typ := range []string{"error", "stdin", "stdout", "stderr", "resize"} {
		id := spdy.StreamId(2*i + 1)
		write(cf, &spdy.SynStreamFrame{StreamId: id, Headers: http.Header{"Streamtype": {typ}}})
		write(sf, &spdy.SynReplyFrame{StreamId: id, Headers: http.Header{}})
	}
	write(cf, &spdy.DataFrame{StreamId: 9, Data: []byte(`{"Width":80,"Height":24}`)})
	write(cf, &spdy.DataFrame{StreamId: 3, Data: []byte("typed\n")})
	write(cf, &spdy.DataFrame{StreamId: 3, Flags: spdy.DataFlagFin})
	write(sf, &spdy.DataFrame{StreamId: 5, Data: bytes.Repeat([]byte("x"), 10000)})
	write(sf, &spdy.DataFrame{StreamId: 7, Data: []byte("oops\n")})
	status, _ := json.Marshal(metav1.Status{Status: metav1.StatusFailure, Reason: "NonZeroExitCode",
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "ExitCode", Message: "3"}}}})
	write(sf, &spdy.DataFrame{StreamId: 1, Data: status, Flags: spdy.DataFlagFin})
	write(cf, &spdy.PingFrame{Id: 1})
	return c.Bytes(), s.Bytes()
}

func TestFrameReader(t *testing.T) {
	fromClient, toClient := spdyExec(t)
	for _, split := range []int{0, 1, 3, 7, 100, 4096} {
		t.Run(fmt.Sprintf("pieces of %d bytes", split), func(t *testing.T) {
			o := &wiretest.Observer{Record: true}
			s := NewFrameReader("v4.channel.k8s.io", wire.Shape{}, o)
			wiretest.FeedSplit(s.FromClient, fromClient, split)
			wiretest.FeedSplit(s.ToClient, toClient, split)
			s.Close()
			byStream, resizes, code := o.Result()
			want := map[string]int64{"stdin": 6, "stdout": 10000, "stderr": 5}
			if !reflect.DeepEqual(byStream, want) || resizes != 1 || code != "3" {
				t.Errorf("bytes %v, resizes %d, exit %q; want %v, 1, 3", byStream, resizes, code, want)
			}
			out, in := len(o.Recorded("stdout"))+len(o.Recorded("stderr")), len(o.Recorded("stdin"))
			if out != 10005 || in != 6 {
				t.Errorf("recorded %d bytes of output, %d of stdin", out, in)
			}
		})
	}
}

// FuzzSPDYFrameReader: any bytes, in any split, in either direction, never panic or hang the reader.
func FuzzSPDYFrameReader(f *testing.F) {
	fromClient, toClient := spdyExec(f)
	f.Add(fromClient, toClient, uint8(0))
	f.Add(fromClient, toClient, uint8(5))
	f.Add([]byte("\x80\x03\x00\x01\x00\x00\x00\x0a\x00\x00\x00\x01"), []byte{0, 0, 0, 1, 1, 0, 0, 3, 'a', 'b'}, uint8(1))
	f.Add([]byte("\x80\x03\x00\x63this is no SPDY frame at all"), []byte{}, uint8(2))
	f.Fuzz(func(t *testing.T, a, b []byte, split uint8) {
		o := &wiretest.Observer{}
		s := NewFrameReader("v4.channel.k8s.io", wire.Shape{}, o)
		wiretest.FeedSplit(s.FromClient, a, int(split))
		wiretest.FeedSplit(s.ToClient, b, int(split))
		s.Close()
		_, _, _ = o.Result()
	})
}

// A client's frames that are not SPDY, or data for a stream it never opened, are a protocol error
// (the session is ended); the kubelet's, and a real exec's frames, are not.
func TestSPDYClientProtocolError(t *testing.T) {
	fromClient, toClient := spdyExec(t)
	cases := []struct {
		name       string
		fromClient []byte
		toClient   []byte
		want       string // "" for none
	}{
		{"an exec", fromClient, toClient, ""},
		{"garbage from the client", []byte("\x80\x03\x00\x63this is no SPDY frame at all"), nil, "unreadable SPDY frames"},
		{"data for a stream never opened", []byte{0, 0, 0, 1, 0, 0, 0, 2, 'h', 'i'}, nil, "data for stream 1, which the client never opened"},
		{"a control frame too large", []byte{0x80, 3, 0, 1, 0, 0xff, 0xff, 0xff}, nil, "a control frame of"},
		{"garbage from the kubelet", nil, []byte("\x80\x03\x00\x63this is no SPDY frame at all"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := &wiretest.Observer{}
			s := NewFrameReader("v4.channel.k8s.io", wire.Shape{}, o)
			wiretest.FeedSplit(s.FromClient, tc.fromClient, 3)
			wiretest.FeedSplit(s.ToClient, tc.toClient, 3)
			if got := o.Refused(); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("protocol error %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFrameReaderGivesUpCleanly(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cases := []struct {
		name string
		feed func(s *FrameReader)
		why  string
	}{
		{"garbage", func(s *FrameReader) { s.ToClient([]byte("\x80\x03\x00\x63this is no SPDY frame at all")) }, "unknown: unreadable SPDY frames"},
		{"many frames: no hang, no leak", func(s *FrameReader) {
			for i := 0; i < 10000; i++ {
				s.FromClient([]byte{0, 0, 0, 1, 0, 0, 0, 0}) // empty data frames of stream 1
			}
		}, "unknown: "},
		{"nothing", func(*FrameReader) {}, "unknown: the session ended without an exit status"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := &wiretest.Observer{}
			s := NewFrameReader("v4.channel.k8s.io", wire.Shape{}, o)
			tc.feed(s)
			s.Close()
			if _, _, code := o.Result(); !bytes.HasPrefix([]byte(code), []byte(tc.why)) {
				t.Errorf("exit code %q, want %q...", code, tc.why)
			}
		})
	}
}
