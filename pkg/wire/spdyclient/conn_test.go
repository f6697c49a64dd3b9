package spdyclient

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/spdystream"
	"github.com/moby/spdystream/spdy"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
	wirespdy "github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
)

// kubeletEnd is the kubelet's end of a connection, with spdystream's framer.
type kubeletEnd struct {
	t    *testing.T
	conn net.Conn
	f    *spdy.Framer
}

// pipe is a Conn and the kubelet's end of it.
func pipe(t *testing.T) (*Conn, *kubeletEnd) {
	ours, theirs := net.Pipe()
	f, err := spdy.NewFramer(theirs, theirs)
	if err != nil {
		t.Fatal(err)
	}
	c := NewConn(ours, ours, 0)
	t.Cleanup(func() {
		_ = theirs.Close()
		_ = c.Close()
		<-c.CloseChan()
	})
	return c, &kubeletEnd{t: t, conn: theirs, f: f}
}

func (k *kubeletEnd) write(frames ...spdy.Frame) {
	for _, f := range frames {
		if err := k.f.WriteFrame(f); err != nil {
			k.t.Errorf("the kubelet's write: %v", err)
		}
	}
}

func (k *kubeletEnd) read() spdy.Frame {
	f, err := k.f.ReadFrame()
	if err != nil {
		k.t.Errorf("the kubelet's read: %v", err)
	}
	return f
}

// open creates a stdout stream whose SYN_STREAM the kubelet reads; script then answers it.
func open(t *testing.T, c *Conn, k *kubeletEnd, script func()) (*Stream, error) {
	return openType(t, c, k, "stdout", script)
}

// openType is open with the stream type typ.
func openType(t *testing.T, c *Conn, k *kubeletEnd, typ string, script func()) (*Stream, error) {
	type result struct {
		s   *Stream
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := c.CreateStream(http.Header{"Streamtype": {typ}})
		st, _ := s.(*Stream)
		done <- result{st, err}
	}()
	if syn, ok := k.read().(*spdy.SynStreamFrame); !ok || syn.StreamId != 1 || syn.Headers.Get("streamtype") != typ {
		t.Fatalf("the kubelet read %#v", syn)
	}
	script()
	r := <-done
	return r.s, r.err
}

func data(id spdy.StreamId, fin bool, p string) *spdy.DataFrame {
	f := &spdy.DataFrame{StreamId: id, Data: []byte(p)}
	if fin {
		f.Flags = spdy.DataFlagFin
	}
	return f
}

func reply(fin bool) *spdy.SynReplyFrame {
	f := &spdy.SynReplyFrame{StreamId: 1, Headers: http.Header{}}
	if fin {
		f.CFHeader.Flags = spdy.ControlFlagFin
	}
	return f
}

// A kubelet that misbehaves gets spdystream's answer, or less: never a panic, a hang, or a
// buffer beyond its bound.
func TestHostileKubelet(t *testing.T) {
	noLeaks(t)
	for _, c := range []struct {
		name string
		// script answers stream 1's SYN_STREAM.
		script func(k *kubeletEnd)
		// after runs after CreateStream returned.
		after   func(k *kubeletEnd)
		openErr error
		read    string // what the stream reads before io.EOF
		ended   bool   // the connection's reading ended
	}{
		{name: "a second SYN_REPLY is ignored", script: func(k *kubeletEnd) { k.write(reply(false), reply(false)) },
			after: func(k *kubeletEnd) { k.write(data(1, false, "a"), data(1, true, "b")) }, read: "ab"},
		{name: "reset before the reply", script: func(k *kubeletEnd) {
			k.write(&spdy.RstStreamFrame{StreamId: 1, Status: spdy.RefusedStream})
		}, openErr: spdystream.ErrReset},
		{name: "data before the reply is dropped", script: func(k *kubeletEnd) { k.write(data(1, false, "early"), reply(false)) },
			after: func(k *kubeletEnd) { k.write(data(1, true, "late")) }, read: "late"},
		{name: "data for unknown streams is dropped", script: func(k *kubeletEnd) { k.write(reply(false)) },
			after: func(k *kubeletEnd) { k.write(data(99, false, "x"), data(2, true, "y"), data(1, true, "z")) }, read: "z"},
		{name: "data after FIN is dropped", script: func(k *kubeletEnd) { k.write(reply(false)) },
			after: func(k *kubeletEnd) { k.write(data(1, true, "fin"), data(1, false, "after")) }, read: "fin"},
		{name: "a reply with FIN ends the stream", script: func(k *kubeletEnd) { k.write(reply(true)) }, read: ""},
		{name: "reset after data: what came is read", script: func(k *kubeletEnd) { k.write(reply(false)) },
			after: func(k *kubeletEnd) {
				k.write(data(1, false, "kept"), &spdy.RstStreamFrame{StreamId: 1, Status: spdy.Cancel})
			}, read: "kept"},
		{name: "GOAWAY ends the reading", script: func(k *kubeletEnd) { k.write(reply(false)) },
			after: func(k *kubeletEnd) { k.write(data(1, false, "g"), &spdy.GoAwayFrame{Status: spdy.GoAwayOK}) }, read: "g", ended: true},
		{name: "a stream the kubelet opens is refused", script: func(k *kubeletEnd) { k.write(reply(false)) },
			after: func(k *kubeletEnd) {
				k.write(&spdy.SynStreamFrame{StreamId: 2, Headers: http.Header{"Streamtype": {"x"}}})
				if rst, ok := k.read().(*spdy.RstStreamFrame); !ok || rst.StreamId != 2 || rst.Status != spdy.RefusedStream {
					k.t.Errorf("the kubelet read %#v, want a RST_STREAM refusing stream 2", rst)
				}
				k.write(data(1, true, "r"))
			}, read: "r"},
		{name: "the kubelet's PING is answered", script: func(k *kubeletEnd) { k.write(reply(false)) },
			after: func(k *kubeletEnd) {
				k.write(&spdy.PingFrame{Id: 2})
				if p, ok := k.read().(*spdy.PingFrame); !ok || p.Id != 2 {
					k.t.Errorf("the kubelet read %#v, want PING 2", p)
				}
				k.write(data(1, true, "p"))
			}, read: "p"},
		{name: "an oversized control frame ends the reading", script: func(k *kubeletEnd) { k.write(reply(false)) },
			after: func(k *kubeletEnd) {
				big := http.Header{"X": {strings.Repeat("a", 70<<10)}}
				// spdystream's own limit is 16 MiB; the write fails as the connection ends.
				_ = k.f.WriteFrame(&spdy.HeadersFrame{StreamId: 1, Headers: big})
			}, read: "", ended: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, k := pipe(t)
			s, err := open(t, conn, k, func() { c.script(k) })
			if !errors.Is(err, c.openErr) {
				t.Fatalf("CreateStream: %v, want %v", err, c.openErr)
			}
			if err != nil {
				return
			}
			afterDone := make(chan struct{})
			go func() {
				defer close(afterDone)
				if c.after != nil {
					c.after(k)
				}
			}()
			defer func() { <-afterDone }()
			got, err := io.ReadAll(s)
			if string(got) != c.read || err != nil {
				t.Errorf("read %q, %v; want %q", got, err, c.read)
			}
			if c.ended {
				<-conn.CloseChan()
				if _, err := conn.CreateStream(http.Header{}); !errors.Is(err, ErrClosed) {
					t.Errorf("CreateStream after the reading ended: %v", err)
				}
			}
		})
	}
}

// A stream's unread data stops the connection's reading at maxBuffered, and flows on as it is read.
func TestStreamBufferBound(t *testing.T) {
	noLeaks(t)
	conn, k := pipe(t)
	s, err := open(t, conn, k, func() { k.write(reply(false)) })
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("0123456789abcdef"), 3*maxBuffered/16)
	go k.write(data(1, false, string(want[:len(want)/2])), data(1, true, string(want[len(want)/2:])))
	// Nothing reads until the stream holds its bound: had it none, the whole would be read by now
	// or soon, and read below in more than one piece of the bound's size.
	conn.mu.Lock()
	for len(s.buf) < maxBuffered {
		conn.cond.Wait()
	}
	conn.mu.Unlock()
	var got []byte
	for {
		conn.mu.Lock()
		held := len(s.buf)
		conn.mu.Unlock()
		if held > maxBuffered {
			t.Fatalf("the stream holds %d bytes, over its bound of %d", held, maxBuffered)
		}
		buf := make([]byte, maxBuffered)
		n, err := s.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
	}
	if !bytes.Equal(got, want) {
		t.Errorf("read %d bytes, want %d", len(got), len(want))
	}
}

// fuzzConn is a kubelet's connection that sends in and takes whatever is written.
type fuzzConn struct {
	net.Conn
	in *bytes.Reader
}

func (c *fuzzConn) Read(p []byte) (int, error)       { return c.in.Read(p) }
func (c *fuzzConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *fuzzConn) Close() error                     { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// The kubelet's bytes after it replied to stream 1, as the connection reads them: whatever they
// are, reading ends at their end, stream 1 reads to io.EOF, and no buffer passes its bound.
func FuzzSPDYClient(f *testing.F) {
	var replied bytes.Buffer
	fr, _ := spdy.NewFramer(&replied, nil)
	_ = fr.WriteFrame(reply(false))
	prefix := replied.Bytes()
	for _, seed := range [][]spdy.Frame{
		{data(1, false, "a"), data(1, true, "b")},
		{data(3, false, "x"), &spdy.RstStreamFrame{StreamId: 1, Status: spdy.Cancel}},
		{&spdy.PingFrame{Id: 2}, &spdy.GoAwayFrame{}},
		{&spdy.SynStreamFrame{StreamId: 2, Headers: http.Header{"A": {"b"}}}, reply(true)},
		{&spdy.HeadersFrame{StreamId: 1, CFHeader: spdy.ControlFrameHeader{Flags: spdy.ControlFlagFin}, Headers: http.Header{}}},
	} {
		var b bytes.Buffer
		w, _ := spdy.NewFramer(&b, nil)
		_ = w.WriteFrame(reply(false)) // the compression state the prefix left
		b.Reset()
		for _, fr := range seed {
			_ = w.WriteFrame(fr)
		}
		f.Add(b.Bytes())
	}
	f.Add(wirespdy.AppendDataHeader(nil, 1, false, 1<<20)) // a DATA frame longer than what comes
	f.Fuzz(func(t *testing.T, in []byte) {
		fc := &fuzzConn{in: bytes.NewReader(append(bytes.Clone(prefix), in...))}
		c := NewConn(fc, fc, 0)
		st, err := c.CreateStream(http.Header{})
		if err != nil {
			<-c.CloseChan()
			return
		}
		s := st.(*Stream)
		var peak int
		for {
			c.mu.Lock()
			peak = max(peak, len(s.buf))
			c.mu.Unlock()
			if _, err := s.Read(make([]byte, 4096)); err != nil {
				break
			}
		}
		<-c.CloseChan()
		_ = c.Close()
		if peak > maxBuffered {
			t.Fatalf("the stream held %d bytes, over its bound of %d", peak, maxBuffered)
		}
	})
}

// Close ends a reading that waits for a stream client-go no longer reads (taken back by
// RemoveStreams, so not reset): the reading goroutine ends and CloseChan closes.
func TestCloseWhileTheReadingWaits(t *testing.T) {
	noLeaks(t)
	conn, k := pipe(t)
	s, err := open(t, conn, k, func() { k.write(reply(false)) })
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = k.f.WriteFrame(data(1, false, strings.Repeat("z", 2*maxBuffered))) }() // cut short by the Close
	conn.mu.Lock()
	for len(s.buf) < maxBuffered {
		conn.cond.Wait()
	}
	conn.mu.Unlock()
	conn.RemoveStreams(s)
	go func() { _, _ = io.Copy(io.Discard, k.conn) }() // the kubelet reads the GOAWAY
	if err := conn.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	<-conn.CloseChan()
}

// TestErrorStreamBound: client-go reads the error stream whole before it decodes it, so a kubelet
// that sends more than an error message ends its connection, and no more is read.
func TestErrorStreamBound(t *testing.T) {
	noLeaks(t)
	conn, k := pipe(t)
	s, err := openType(t, conn, k, "error", func() { k.write(reply(false)) })
	if err != nil {
		t.Fatal(err)
	}
	chunk := strings.Repeat("e", 16<<10)
	go func() { // cut short once the bound is passed
		for i := 0; i <= wire.MaxErrorMessage/len(chunk); i++ {
			if k.f.WriteFrame(data(1, false, chunk)) != nil {
				return
			}
		}
		_ = k.f.WriteFrame(data(1, true, ""))
	}()
	got, _ := io.ReadAll(s)
	if len(got) > wire.MaxErrorMessage {
		t.Fatalf("read %d bytes of the error stream, over its bound of %d", len(got), wire.MaxErrorMessage)
	}
	<-conn.CloseChan() // the reading ended without a Close
}

// TestCloseWithAKubeletThatDoesNotRead: a write blocked by a kubelet that stopped reading (stdin to
// a container that never reads it) does not hold Close, which ends every session.
func TestCloseWithAKubeletThatDoesNotRead(t *testing.T) {
	noLeaks(t)
	conn, k := pipe(t)
	s, err := openType(t, conn, k, "stdin", func() { k.write(reply(false)) })
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() { _, err := s.Write(make([]byte, 64<<10)); wrote <- err }() // nothing reads it
	closed := make(chan error, 1)
	go func() { closed <- conn.Close() }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second): // a hang guard, not a timing
		t.Fatal("Close is held by a write the kubelet does not read")
	}
	if err := <-wrote; err == nil {
		t.Error("the write that nothing read succeeded")
	}
	<-conn.CloseChan()
}
