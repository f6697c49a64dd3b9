package clientconn_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/spdystream/spdy"
	"go.uber.org/goleak"

	"github.com/exec-proxy/exec-proxy/pkg/proxy/clientconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/internal/proxytest"
	"github.com/exec-proxy/exec-proxy/pkg/wire"
	wirespdy "github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
	"github.com/exec-proxy/exec-proxy/pkg/wire/websocket"
	"github.com/exec-proxy/exec-proxy/pkg/wire/wiretest"
)

const spdyHead = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n"

// joined is a joinable session's client connection over a pipe: what its reader reads (on the way
// to the kubelet) is kept, and so is what reaches the client.
type joined struct {
	spdy                bool
	c                   *clientconn.Conn
	client              net.Conn // the client's end
	toKubelet, toClient *proxytest.LockedBuffer
	obs                 *wiretest.Observer
	framer              *spdy.Framer
}

func newJoined(t *testing.T, isSPDY bool) *joined {
	server, client := net.Pipe()
	return newJoinedOver(t, isSPDY, server, client)
}

// newJoinedOver is newJoined over the connection whose server and client ends are given.
func newJoinedOver(t *testing.T, isSPDY bool, server, client net.Conn) *joined {
	s := proxytest.NewSession(t)
	j := &joined{spdy: isSPDY, client: client, toKubelet: &proxytest.LockedBuffer{}, toClient: &proxytest.LockedBuffer{},
		obs: &wiretest.Observer{Record: true}}
	shape := wire.Shape{Known: true, Stdin: true, Stdout: true, TTY: true}
	head := proxytest.WSHead
	if isSPDY {
		s.Reader = wirespdy.NewFrameReader("v4.channel.k8s.io", shape, j.obs)
		head = spdyHead
		var err error
		if j.framer, err = spdy.NewFramer(client, nil); err != nil {
			t.Fatal(err)
		}
	} else {
		s.Reader = websocket.NewFrameReader("v5.channel.k8s.io", shape, j.obs)
	}
	j.c = clientconn.NewConn(server, s, clientconn.Options{Joinable: true, Coalesce: isSPDY})
	read, written := make(chan struct{}), make(chan struct{})
	go func() { defer close(read); _, _ = io.Copy(j.toKubelet, j.c) }()
	go func() { defer close(written); _, _ = io.Copy(j.toClient, client) }()
	t.Cleanup(func() {
		_ = j.c.Close()
		_ = client.Close()
		<-read
		<-written
	})
	if _, err := j.c.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	if isSPDY {
		for i, typ := range []string{"stdin", "stdout"} { // streams 1 and 3: ids only grow
			syn := &spdy.SynStreamFrame{StreamId: spdy.StreamId(2*i + 1), Headers: http.Header{"streamtype": {typ}}}
			if err := j.framer.WriteFrame(syn); err != nil {
				t.Fatal(err)
			}
		}
		for range 1000 { // the reader read the SYN_STREAMs (Notice asks it for stdout's stream)
			if _, _, open := s.Reader.(*wirespdy.FrameReader).Open("stdout"); open {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	return j
}

// stdin is the client's stdin frame carrying data.
func (j *joined) stdin(data string) []byte {
	if j.spdy {
		return append([]byte{0, 0, 0, 1, 0, 0, 0, byte(len(data))}, data...)
	}
	return wiretest.WSFrame(true, 2, wiretest.ChannelMsg(0, data), []byte{1, 2, 3, 4})
}

func (j *joined) write(t *testing.T, p []byte) {
	t.Helper()
	if _, err := j.client.Write(p); err != nil {
		t.Fatal(err)
	}
}

// typed is the stdin the kubelet side read, frame by frame.
func (j *joined) typed(t *testing.T) []string {
	t.Helper()
	var out []string
	b := j.toKubelet.Bytes()
	if j.spdy {
		f, err := spdy.NewFramer(io.Discard, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		for {
			frame, err := f.ReadFrame()
			if err != nil {
				return out
			}
			if d, ok := frame.(*spdy.DataFrame); ok && d.StreamId == 1 {
				out = append(out, string(d.Data))
			}
		}
	}
	for len(b) > 0 {
		hl := websocket.HeaderLen(b[1])
		n, off := websocket.PayloadLen(b[:hl])
		var key [4]byte
		copy(key[:], b[off:hl])
		payload := append([]byte(nil), b[hl:hl+int(n)]...)
		websocket.Unmask(payload, key, 0)
		if b[1]&0x80 == 0 || payload[0] != 0 {
			t.Fatalf("a frame the kubelet side read is not a masked stdin message: % x", b[:hl+int(n)])
		}
		out = append(out, string(payload[1:]))
		b = b[hl+int(n):]
	}
	return out
}

func inject(c *clientconn.Conn, data string) <-chan error {
	done := make(chan error, 1)
	go func() { done <- c.Inject(context.Background(), []byte(data)) }()
	return done
}

// within waits for ch, failing the test if it hangs (a wake that never came).
func within[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("hung")
	}
	var zero T
	return zero
}

// A joiner's typing reaches the kubelet side as whole stdin frames of the session's protocol,
// between the client's: never inside a client frame that arrives in pieces, and at once when the
// reader is blocked on the client.
func TestInjectBetweenClientFrames(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	long := strings.Repeat("x", 9<<10)
	for _, isSPDY := range []bool{true, false} {
		t.Run(map[bool]string{true: "SPDY", false: "WebSocket"}[isSPDY], func(t *testing.T) {
			j := newJoined(t, isSPDY)
			j.write(t, j.stdin("ab"))
			if err := within(t, inject(j.c, "XY")); err != nil { // the reader is blocked on the client
				t.Fatal(err)
			}
			cut := j.stdin("cut in two")
			j.write(t, cut[:5])
			held := inject(j.c, "Z")
			settled(t, j.c) // the reader woke, and left the frame for the client's to end
			j.write(t, cut[5:])
			if err := within(t, held); err != nil {
				t.Fatal(err)
			}
			if err := within(t, inject(j.c, long)); err != nil {
				t.Fatal(err)
			}
			j.write(t, j.stdin("cd"))
			_ = j.client.Close()
			_ = j.c.Close()
			want := []string{"ab", "XY", "cut in two", "Z", long[:4<<10], long[4<<10 : 8<<10], long[8<<10:], "cd"}
			for range 100 { // the reader's last read may still be on its way to the buffer
				if len(j.typed(t)) >= len(want) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			got := j.typed(t)
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("the kubelet side read stdin frames %q, want %q", abbreviate(got), abbreviate(want))
			}
			if rec := string(j.obs.Recorded("stdin")); rec != strings.Join(want, "") {
				t.Errorf("the frame reader read stdin %q, want the client's and the joiner's", abbreviate([]string{rec}))
			}
		})
	}
}

// settled waits until the frame injected last is queued and the reader saw its wake.
func settled(t *testing.T, c *clientconn.Conn) {
	t.Helper()
	for range 1000 {
		if queued, waking := clientconn.Pending(c); queued == 0 || !waking {
			if queued > 0 {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
}

func abbreviate(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		if len(v) > 12 {
			v = v[:12] + "…"
		}
		out[i] = v
	}
	return out
}

// Over TLS, a read of the client that a wake timed out stays usable: the client's bytes after it
// arrive whole, after the injected frame.
func TestInjectWakesTLSRead(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, isSPDY := range []bool{true, false} {
		t.Run(map[bool]string{true: "SPDY", false: "WebSocket"}[isSPDY], func(t *testing.T) {
			server, client := wiretest.HandshakenPair(t, func(c net.Conn) net.Conn { return c })
			j := newJoinedOver(t, isSPDY, server, client)
			read := func(want string) {
				t.Helper()
				for range 1000 {
					if string(j.obs.Recorded("stdin")) == want {
						return
					}
					time.Sleep(time.Millisecond)
				}
				t.Fatalf("the frame reader read stdin %q, want %q", j.obs.Recorded("stdin"), want)
			}
			j.write(t, j.stdin("ab"))
			read("ab") // the reader is blocked in the TLS read now, or about to be
			if err := within(t, inject(j.c, "XY")); err != nil {
				t.Fatal(err)
			}
			j.write(t, j.stdin("cd"))
			read("abXYcd")
			for range 1000 { // the reader's last read may still be on its way to the buffer
				if len(j.typed(t)) >= 3 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			if got := strings.Join(j.typed(t), "|"); got != "ab|XY|cd" {
				t.Errorf("the kubelet side read stdin frames %q, want ab|XY|cd", got)
			}
		})
	}
}

// Typing into a session whose stdin ended ends the join; a connection that is not joinable takes none.
func TestInjectRefused(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	t.Run("SPDY stdin finished", func(t *testing.T) {
		j := newJoined(t, true)
		j.write(t, []byte{0, 0, 0, 1, 1, 0, 0, 0}) // FIN
		if err := within(t, inject(j.c, "x")); !errors.Is(err, clientconn.ErrStdinEnded) {
			t.Errorf("got %v, want %v", err, clientconn.ErrStdinEnded)
		}
	})
	t.Run("WebSocket v5 stdin closed", func(t *testing.T) {
		j := newJoined(t, false)
		j.write(t, wiretest.WSFrame(true, 2, []byte{255, 0}, []byte{1, 2, 3, 4}))
		if err := within(t, inject(j.c, "x")); !errors.Is(err, clientconn.ErrStdinEnded) {
			t.Errorf("got %v, want %v", err, clientconn.ErrStdinEnded)
		}
	})
	t.Run("not joinable", func(t *testing.T) {
		c := clientconn.NewConn(&proxytest.SizesConn{}, proxytest.NewSession(t), clientconn.Options{})
		if err := c.Inject(context.Background(), []byte("x")); !errors.Is(err, clientconn.ErrNotJoinable) {
			t.Errorf("got %v, want %v", err, clientconn.ErrNotJoinable)
		}
	})
	t.Run("the joiner leaves while its frame waits", func(t *testing.T) {
		j := newJoined(t, true)
		j.write(t, j.stdin("ab")[:3]) // the client's frame is half read: the injected one waits
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := j.c.Inject(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want %v", err, context.Canceled)
		}
	})
}

// The client hears of a join in a stdout frame between the kubelet's, never inside one.
func TestNotice(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const notice = "\r\n[exec-proxy: alice joined]\r\n"
	for _, isSPDY := range []bool{true, false} {
		t.Run(map[bool]string{true: "SPDY", false: "WebSocket"}[isSPDY], func(t *testing.T) {
			j := newJoined(t, isSPDY)
			out := wiretest.WSFrame(true, 2, wiretest.ChannelMsg(1, "prompt$ "), nil)
			noticeFrame := wiretest.WSFrame(true, 2, wiretest.ChannelMsg(1, notice), nil)
			head := proxytest.WSHead
			if isSPDY {
				out = append([]byte{0, 0, 0, 3, 0, 0, 0, 8}, "prompt$ "...)
				noticeFrame = append([]byte{0, 0, 0, 3, 0, 0, 0, byte(len(notice))}, notice...)
				head = spdyHead
			}
			if _, err := j.c.Write(out[:5]); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- j.c.Notice([]byte(notice)) }()
			if isSPDY { // held for the boundary, not waited for
				if err := within(t, done); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := j.c.Write(out[5:]); err != nil {
				t.Fatal(err)
			}
			if !isSPDY { // WriteFrame waited for the boundary
				if err := within(t, done); err != nil {
					t.Fatal(err)
				}
			}
			want := append(append([]byte(head), out...), noticeFrame...)
			for range 100 {
				if len(j.toClient.Bytes()) >= len(want) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if got := j.toClient.Bytes(); !bytes.Equal(got, want) {
				t.Errorf("the client got %q, want %q", got, want)
			}
			if got := string(j.obs.Recorded("stdout")); got != "prompt$ "+notice {
				t.Errorf("the frame reader read stdout %q, want the kubelet's then the notice", got)
			}
		})
	}
}
