package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"testing"
	"testing/iotest"
	"time"

	"github.com/moby/spdystream/spdy"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
	wirespdy "github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
	"github.com/exec-proxy/exec-proxy/pkg/wire/tlsrecord"
	"github.com/exec-proxy/exec-proxy/pkg/wire/websocket"
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

// directLeg is a kubelet leg reading kubelet that writes stdout and stderr to the client conn.
func directLeg(t *testing.T, fromTranslator, kubelet []byte, client net.Conn) (*kubeletLeg, *sessionConn) {
	s := newSession(context.Background(), 0)
	s.counters = byteCounters()
	t.Cleanup(s.cancel)
	c := &sessionConn{Conn: client, s: s, frames: &wire.FrameWriter{W: tlsrecord.Writer{Conn: client}, Cut: &websocket.FrameCutter{}}}
	c.firstSeen.Store(true)
	stats := newStreamStats()
	types := wirespdy.NewFrameReader("", wire.Shape{}, stats)
	types.FromClient(fromTranslator)
	l := &kubeletLeg{s: s, reader: types, types: types, direct: c, leg: stats,
		in: bufio.NewReader(bytes.NewReader(kubelet)), sent: true}
	return l, c
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

// The kubelet leg writes stdout and stderr to the client, in order and as the translator's own
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
			client := &sizesConn{}
			l, _ := directLeg(t, fromTranslator, kubelet, client)
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
			if msgs := channelMsgs(t, client.all.Bytes()); !reflect.DeepEqual(msgs, wantClient) {
				t.Errorf("the client got %d frames %.40q, want %d", len(msgs), msgs, len(wantClient))
			}
			if len(client.sizes) != len(wantClient) {
				t.Errorf("%d writes to the client, want a frame each", len(client.sizes))
			}
			if b, _, _ := l.leg.result(); b["stdout"] != 103 || b["stderr"] != int64(directChunk+100) {
				t.Errorf("the leg counted %v", b)
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
		{"kubelet gone mid-frame", kubelet[:cut], &sizesConn{}, io.EOF, []string{"1:" + string(bytes.Repeat([]byte("o"), 40))}},
		// The translator reads what came of the header, as it would have without the leg's help.
		{"kubelet gone mid-header", kubelet[:cut-40-3], &sizesConn{}, io.ErrUnexpectedEOF, nil},
		{"client gone", kubelet, &failingConn{err: net.ErrClosed}, net.ErrClosed, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := directLeg(t, fromTranslator, tc.kubelet, tc.client)
			f, _ := spdy.NewFramer(io.Discard, l)
			var err error
			for err == nil {
				_, err = f.ReadFrame()
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("the translator's framer ended with %v, want %v", err, tc.wantErr)
			}
			if sc, ok := tc.client.(*sizesConn); ok {
				if msgs := channelMsgs(t, sc.all.Bytes()); !reflect.DeepEqual(msgs, tc.wantOut) {
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

// A frame written directly waits for the end of a frame the translator began, and does not wait
// on a connection that closed under it.
func TestWriteFrameBetweenTranslatorFrames(t *testing.T) {
	translator := wsFrame(true, 2, append([]byte{3}, bytes.Repeat([]byte("s"), 5000)...), nil)
	direct := wsFrame(true, 2, []byte("\x01out"), nil)
	t.Run("waits for the frame's end", func(t *testing.T) {
		client := &sizesConn{}
		_, c := directLeg(t, nil, nil, client)
		if _, err := c.Write(translator[:4096]); err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { done <- c.writeFrame(direct) }()
		select {
		case err := <-done:
			t.Fatalf("written inside the translator's frame (%v)", err)
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := c.Write(translator[4096:]); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if want := append(append([]byte(nil), translator...), direct...); !bytes.Equal(client.all.Bytes(), want) {
			t.Errorf("the client got %d bytes, not the translator's frame then the direct one", client.all.Len())
		}
	})
	t.Run("a closed connection", func(t *testing.T) {
		server, peer := net.Pipe()
		defer peer.Close()
		_, c := directLeg(t, nil, nil, server)
		go func() { _, _ = io.Copy(io.Discard, peer) }()
		if _, err := c.Write(translator[:4096]); err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { done <- c.writeFrame(direct) }()
		_ = c.Close()
		if err := <-done; err == nil {
			t.Error("a frame written to a closed connection")
		}
	})
}

// Frames written directly renew the idle timeout wsstream keeps on the connection, as its own
// writes do, though not at every frame.
func TestWriteFrameRenewsIdleTimeout(t *testing.T) {
	client := &deadlineConn{}
	_, c := directLeg(t, nil, nil, client)
	frame := wsFrame(true, 2, []byte("\x01out"), nil)
	if err := c.writeFrame(frame); err != nil || len(client.deadlines) != 0 {
		t.Fatalf("without an idle timeout: %v, deadlines %v", err, client.deadlines)
	}
	_ = c.SetDeadline(time.Now().Add(time.Hour))
	for range 3 {
		if err := c.writeFrame(frame); err != nil {
			t.Fatal(err)
		}
	}
	if len(client.deadlines) != 2 {
		t.Fatalf("%d deadlines set, want wsstream's and one renewal", len(client.deadlines))
	}
	if d := time.Until(client.deadlines[1]); d < 59*time.Minute || d > time.Hour {
		t.Errorf("renewed to %v from now, want the idle timeout", d)
	}
}

type deadlineConn struct {
	sizesConn
	deadlines []time.Time
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.deadlines = append(c.deadlines, t)
	return nil
}

// Frames are written directly only where they are v5.channel.k8s.io's, and without a bandwidth limit
// (whose queue the frames go through).
func TestDirectConn(t *testing.T) {
	cases := []struct {
		name     string
		protocol string
		frames   bool
		want     bool
	}{
		{"v5", "v5.channel.k8s.io", true, true},
		{"another protocol", "v4.channel.k8s.io", true, false},
		{"bandwidth limited", "v5.channel.k8s.io", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(context.Background(), 0)
			defer s.cancel()
			c := &sessionConn{s: s}
			if tc.frames {
				c.frames = &wire.FrameWriter{Cut: &websocket.FrameCutter{}}
			}
			s.conn, s.protocol = c, tc.protocol
			if got := s.directConn() != nil; got != tc.want {
				t.Errorf("direct: %t, want %t", got, tc.want)
			}
		})
	}
}
