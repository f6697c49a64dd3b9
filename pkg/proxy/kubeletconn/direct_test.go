package kubeletconn

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"testing"
	"testing/iotest"

	"github.com/moby/spdystream/spdy"

	"github.com/exec-proxy/exec-proxy/pkg/proxy/clientconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/internal/proxytest"
	"github.com/exec-proxy/exec-proxy/pkg/wire"
	wirespdy "github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
	"github.com/exec-proxy/exec-proxy/pkg/wire/websocket"
	"github.com/exec-proxy/exec-proxy/pkg/wire/wiretest"
)

// directExec is an exec session's frames: the translator's (it opens error, stdout and stderr)
// and the kubelet's, which carry stderr longer than one directly written frame.
func directExec(t *testing.T) (fromTranslator, fromKubelet []byte) {
	var c, k bytes.Buffer
	cf, _ := spdy.NewFramer(&c, nil)
	kf, _ := spdy.NewFramer(&k, nil)
	write := func(f *spdy.Framer, frame spdy.Frame) {
		if err := f.WriteFrame(frame); err != nil {
			t.Fatal(err)
		}
	}
	for i, typ := range []string{"error", "stdout", "stderr"} { // ids rise, as spdystream has them
		id := spdy.StreamId(2*i + 1)
		write(cf, &spdy.SynStreamFrame{StreamId: id, Headers: http.Header{"Streamtype": {typ}}})
		write(kf, &spdy.SynReplyFrame{StreamId: id, Headers: http.Header{}})
	}
	write(kf, &spdy.DataFrame{StreamId: 3, Data: bytes.Repeat([]byte("o"), 100)})
	write(kf, &spdy.PingFrame{Id: 1})
	write(kf, &spdy.DataFrame{StreamId: 5, Data: bytes.Repeat([]byte("e"), directChunk+100)})
	write(kf, &spdy.DataFrame{StreamId: 3, Data: []byte("end"), Flags: spdy.DataFlagFin})
	write(kf, &spdy.DataFrame{StreamId: 5, Flags: spdy.DataFlagFin})
	write(kf, &spdy.DataFrame{StreamId: 1, Data: []byte(`{"status":"Success"}`), Flags: spdy.DataFlagFin})
	return c.Bytes(), k.Bytes()
}

// directConn is a translator's connection reading kubelet that writes stdout and stderr to the
// client connection over client.
func directConn(t *testing.T, fromTranslator, kubelet []byte, client net.Conn) (*translatorConn, *wiretest.Observer) {
	c := clientconn.NewConn(client, proxytest.NewSession(t), clientconn.Options{})
	_, _ = c.Write([]byte(proxytest.WSHead)) // the 101: what follows are frames
	if sc, ok := client.(*proxytest.SizesConn); ok {
		sc.All.Reset()
		sc.Sizes = nil
	}
	tally := &wiretest.Observer{}
	types := wirespdy.NewFrameReader("", wire.Shape{}, tally)
	types.FromClient(fromTranslator)
	l := &translatorConn{b: NewSide("n1", "127.0.0.1:10250", nil), tally: tally, reader: types, streams: types,
		direct: directReader{client: c}, hs: handshake{in: bufio.NewReader(bytes.NewReader(kubelet)), sent: true}}
	return l, tally
}

// channelMsgs reads the client's WebSocket frames as "channel:payload".
func channelMsgs(t *testing.T, b []byte) []string {
	var out []string
	for len(b) > 0 {
		n := websocket.HeaderLen(b[1])
		size, _ := websocket.PayloadLen(b[:n])
		if b[0] != 0x82 || len(b) < n+int(size) {
			t.Fatalf("not a whole binary frame: % x", b[:min(len(b), 16)])
		}
		msg := b[n : n+int(size)]
		out = append(out, string('0'+msg[0])+":"+string(msg[1:]))
		b = b[n+int(size):]
	}
	return out
}

// The translator's connection writes stdout and stderr to the client, in order and as the translator's own
// frames; the translator reads everything else whole, and each stream's end.
func TestReadDirect(t *testing.T) {
	fromTranslator, kubelet := directExec(t)
	cases := []struct {
		name string
		read func(io.Reader) io.Reader
	}{
		{"as spdystream reads", func(r io.Reader) io.Reader { return r }},
		{"a byte at a time", iotest.OneByteReader},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client := &proxytest.SizesConn{}
			l, tally := directConn(t, fromTranslator, kubelet, client)
			f, _ := spdy.NewFramer(io.Discard, tc.read(l))
			var got []string
			for {
				frame, err := f.ReadFrame()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("the translator's framer: %v", err)
				}
				got = append(got, frameSummary(frame))
			}
			want := []string{"reply 1", "reply 3", "reply 5", "ping", "data 3 fin=true ", "data 5 fin=true ",
				`data 1 fin=true {"status":"Success"}`}
			if !sameSet(got[:3], want[:3]) || !reflect.DeepEqual(got[3:], want[3:]) {
				t.Errorf("the translator read %q, want %q", got, want)
			}
			wantClient := []string{"1:" + string(bytes.Repeat([]byte("o"), 100)),
				"2:" + string(bytes.Repeat([]byte("e"), directChunk)), "2:" + string(bytes.Repeat([]byte("e"), 100)), "1:end"}
			if msgs := channelMsgs(t, client.All.Bytes()); !reflect.DeepEqual(msgs, wantClient) {
				t.Errorf("the client got %d frames %.40q, want %d", len(msgs), msgs, len(wantClient))
			}
			if len(client.Sizes) != len(wantClient) {
				t.Errorf("%d writes to the client, want a frame each", len(client.Sizes))
			}
			if b, _, _ := tally.Result(); b["stdout"] != 103 || b["stderr"] != int64(directChunk+100) {
				t.Errorf("the translator's connection counted %v", b)
			}
		})
	}
}

func frameSummary(f spdy.Frame) string {
	switch f := f.(type) {
	case *spdy.SynReplyFrame:
		return "reply " + string('0'+byte(f.StreamId))
	case *spdy.PingFrame:
		return "ping"
	case *spdy.DataFrame:
		return "data " + string('0'+byte(f.StreamId)) + " fin=" + map[bool]string{true: "true", false: "false"}[f.Flags&spdy.DataFlagFin != 0] + " " + string(f.Data)
	}
	return "other"
}

func sameSet(a, b []string) bool {
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// A kubelet gone mid-frame ends the translator's reading as the end of the stream, after what
// arrived of the frame went to the client; a client gone ends it with the write's error.
func TestReadDirectEnds(t *testing.T) {
	fromTranslator, kubelet := directExec(t)
	cut := bytes.Index(kubelet, bytes.Repeat([]byte("o"), 100)) + 40
	cases := []struct {
		name    string
		kubelet []byte
		client  net.Conn
		wantErr error
		wantOut []string
	}{
		{"kubelet gone mid-frame", kubelet[:cut], &proxytest.SizesConn{}, io.EOF, []string{"1:" + string(bytes.Repeat([]byte("o"), 40))}},
		// The translator reads what came of the header, as it would have without this help.
		{"kubelet gone mid-header", kubelet[:cut-40-3], &proxytest.SizesConn{}, io.ErrUnexpectedEOF, nil},
		{"client gone", kubelet, &failingConn{err: net.ErrClosed}, net.ErrClosed, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := directConn(t, fromTranslator, tc.kubelet, tc.client)
			f, _ := spdy.NewFramer(io.Discard, l)
			var err error
			for err == nil {
				_, err = f.ReadFrame()
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("the translator's framer ended with %v, want %v", err, tc.wantErr)
			}
			if sc, ok := tc.client.(*proxytest.SizesConn); ok {
				if msgs := channelMsgs(t, sc.All.Bytes()); !reflect.DeepEqual(msgs, tc.wantOut) {
					t.Errorf("the client got %q, want %q", msgs, tc.wantOut)
				}
			}
		})
	}
}

type failingConn struct {
	net.Conn
	err error
}

func (c *failingConn) Write([]byte) (int, error) { return 0, c.err }
