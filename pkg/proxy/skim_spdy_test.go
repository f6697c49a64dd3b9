package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/spdystream/spdy"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/exec-proxy/exec-proxy/pkg/recording/recordingtest"
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

// feedSplit feeds p in pieces of n bytes (all at once for n <= 0).
func feedSplit(feed func([]byte), p []byte, n int) {
	if n <= 0 {
		n = len(p)
	}
	for len(p) > 0 {
		k := min(n, len(p))
		feed(append([]byte(nil), p[:k]...)) // the relay reuses its buffer
		p = p[k:]
	}
}

func TestSPDYSkimmer(t *testing.T) {
	fromClient, toClient := spdyExec(t)
	for _, split := range []int{0, 1, 3, 7, 100, 4096} {
		t.Run(fmt.Sprintf("pieces of %d bytes", split), func(t *testing.T) {
			stats := newStreamStats()
			rec := &recordingtest.Sink{RecordStdin: true}
			stats.recording.Store(rec)
			s := newSkimmer("SPDY/3.1", "v4.channel.k8s.io", stats)
			feedSplit(s.fromClient, fromClient, split)
			feedSplit(s.toClient, toClient, split)
			s.close()
			byStream, resizes, code := stats.result()
			want := map[string]int64{"stdin": 6, "stdout": 10000, "stderr": 5}
			if !reflect.DeepEqual(byStream, want) || resizes != 1 || code != "3" {
				t.Errorf("bytes %v, resizes %d, exit %q; want %v, 1, 3", byStream, resizes, code, want)
			}
			got := map[string]int{}
			for _, ev := range rec.Events() {
				got[ev.Kind] += len(ev.Data)
			}
			if got["o"] != 10005 || got["i"] != 6 || got["r"] == 0 {
				t.Errorf("recorded %v", got)
			}
		})
	}
}

// FuzzSPDYSkimmer: any bytes, in any split, in either direction, never panic or hang the reader.
func FuzzSPDYSkimmer(f *testing.F) {
	fromClient, toClient := spdyExec(f)
	f.Add(fromClient, toClient, uint8(0))
	f.Add(fromClient, toClient, uint8(5))
	f.Add([]byte("\x80\x03\x00\x01\x00\x00\x00\x0a\x00\x00\x00\x01"), []byte{0, 0, 0, 1, 1, 0, 0, 3, 'a', 'b'}, uint8(1))
	f.Add([]byte("\x80\x03\x00\x63this is no SPDY frame at all"), []byte{}, uint8(2))
	f.Fuzz(func(t *testing.T, a, b []byte, split uint8) {
		stats := newStreamStats()
		s := newSkimmer("SPDY/3.1", "v4.channel.k8s.io", stats)
		feedSplit(s.fromClient, a, int(split))
		feedSplit(s.toClient, b, int(split))
		s.close()
		_, _, _ = stats.result()
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
			stats := newStreamStats()
			var got string
			stats.onClientProtocolError = func(why string) { got = why }
			s := newSkimmer("SPDY/3.1", "v4.channel.k8s.io", stats)
			feedSplit(s.fromClient, tc.fromClient, 3)
			feedSplit(s.toClient, tc.toClient, 3)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("protocol error %q, want %q", got, tc.want)
			}
		})
	}
}
