package kubeletconn

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/clientconn"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/wire"
	wirespdy "github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
)

// Tally is the Observer of the translator's connection to the kubelet, which also tells how many
// bytes of a stream it counted.
type Tally interface {
	wire.Observer
	StreamBytes(stream string) int64
	// ExitUnknown says why the exit code cannot be known; the first reason wins.
	ExitUnknown(why string)
}

// TranslatorTransport is the stream translator's transport. The translator writes its own request
// to the kubelet and reads the frames itself, so the transport's dialer hands it the session's
// verified kubelet connection, seen through a translatorConn, which
//   - adds exec-proxy's credentials, when kubelets take a bearer token (the translator cannot add a header);
//   - reads the kubelet's frames: the translator reports a kubelet that vanished as a success
//     (an empty error stream), so the exit code of a WebSocket session is taken from them;
//   - gives the translator a refusal as a Status, which it passes on to the client whole.
func TranslatorTransport(kubelets *nodeconn.Transport) *http.Transport {
	return &http.Transport{DialContext: func(ctx context.Context, _, address string) (net.Conn, error) {
		return dialTranslator(ctx, kubelets, address), nil
	}}
}

// dialTranslator hands over the session's kubelet connection. It never fails: what goes wrong
// reaches the translator as the kubelet's answer, a Status.
func dialTranslator(ctx context.Context, kubelets *nodeconn.Transport, address string) net.Conn {
	b, conn, err := taken(ctx, address)
	l := &translatorConn{kubelets: kubelets, b: b, reader: wire.Nop{}}
	if b != nil {
		l.route = b.client.StdinRoute()
	}
	if err != nil {
		l.refuse(session.GatewayError(err.Error()))
		return l
	}
	// Not a lingeringConn: the translator's SPDY connection (package spdyclient) stops reading at
	// the kubelet's GOAWAY, and may then write its own, which must fail, not wait for the reading to end.
	l.conn = conn
	l.frames = &wire.FrameWriter{W: b.writer(conn), Cut: &wirespdy.FrameCutter{}}
	b.addConn()
	l.tally = b.client.Translated()
	reader := wirespdy.NewFrameReader("", wire.Shape{}, l.tally)
	l.reader = reader
	if c := b.client.DirectConn(); c != nil {
		l.direct.client, l.streams = c, reader
	} else if l.route != nil { // stdin goes through the translator too
		l.route.End()
	}
	l.stop = context.AfterFunc(b.connsCtx, func() { _ = l.Close() })
	return l
}

// translatorConn is the translator's connection to the kubelet. Reads and writes run on the
// translator's goroutines, one reader and one writer at a time, as its SPDY connection (package
// spdyclient) has them.
type translatorConn struct {
	kubelets *nodeconn.Transport // adds exec-proxy's credentials to the translator's request
	b        *Side
	conn     net.Conn // the kubelet's connection; nil when refused at the dial
	tally    Tally    // hears the frames both ways, once connected
	stop     func() bool
	hs       handshake
	// reader reads the frames both ways; streams is it too, for the stream types, when stdout and
	// stderr are written to the client directly.
	reader  wire.FrameReader
	streams *wirespdy.FrameReader
	frames  *wire.FrameWriter // the translator's frames to the kubelet
	direct  directReader      // see direct.go
	// interleaved orders the translator's frames and the stdin frames written directly (WriteStdin).
	interleaved wire.Interleaved
	route       *clientconn.StdinRoute // where the client's stdin is told of the stdin stream, if it is
	stdinOpened bool
	closeOnce   sync.Once
}

// handshake is the translator's request and the kubelet's answer, before the frames.
type handshake struct {
	request []byte        // the translator's request until its head is whole
	sent    bool          // the request went to the kubelet, or was refused
	answer  []byte        // what the translator reads before the frames: the 101, or a refusal
	refused bool          // after the answer, the connection ends
	in      *bufio.Reader // the kubelet's bytes after its answer, once read
}

func (l *translatorConn) Write(p []byte) (int, error) {
	if l.hs.refused { // the translator's request goes nowhere: it reads the refusal next
		return len(p), nil
	}
	if l.hs.sent {
		return l.writeFrames(p)
	}
	l.hs.request = append(l.hs.request, p...)
	if bytes.Contains(l.hs.request, []byte("\r\n\r\n")) {
		l.hs.sent = true
		l.send()
	}
	return len(p), nil
}

// send forwards the translator's request to the kubelet, with exec-proxy's credentials.
func (l *translatorConn) send() {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(l.hs.request)))
	l.hs.request = nil
	if err != nil {
		l.refuse(session.GatewayError(fmt.Sprintf("the stream translator's request: %v", err)))
		return
	}
	req.URL.Scheme, req.URL.Host, req.RequestURI = "https", req.Host, ""
	if err := l.kubelets.Authorize(req.Header); err != nil {
		l.refuse(session.GatewayError(err.Error()))
		return
	}
	if err := req.Write(l.conn); err != nil {
		l.refuse(session.GatewayError(fmt.Sprintf("writing to the kubelet: %v", err)))
	}
}

// refuse answers the translator with err's Status instead of the kubelet's answer.
func (l *translatorConn) refuse(err error) {
	var b bytes.Buffer
	session.WriteStatusResponse(&b, err)
	l.hs.answer, l.hs.refused, l.hs.sent = b.Bytes(), true, true
	if l.route != nil {
		l.route.End()
	}
	if l.conn != nil {
		_ = l.conn.Close()
	}
}

func (l *translatorConn) Read(p []byte) (int, error) {
	if l.hs.in == nil && !l.hs.refused {
		l.readAnswer()
	}
	if len(l.hs.answer) > 0 {
		n := copy(p, l.hs.answer)
		l.hs.answer = l.hs.answer[n:]
		return n, nil
	}
	if l.hs.refused {
		return 0, io.EOF
	}
	if l.direct.client != nil {
		return l.readDirect(p)
	}
	return l.readKubelet(p)
}

// readKubelet reads the kubelet's bytes as they come, for the translator.
func (l *translatorConn) readKubelet(p []byte) (int, error) {
	n, err := l.hs.in.Read(p)
	l.reader.ToClient(p[:n])
	return n, err
}

// readAnswer reads the kubelet's answer to the upgrade: the translator gets the 101 alone, the
// frames after it, or a refusal as a Status made of the kubelet's.
func (l *translatorConn) readAnswer() {
	in := bufio.NewReader(l.conn)
	resp, err := http.ReadResponse(in, nil)
	if err != nil {
		l.refuse(session.GatewayError(fmt.Sprintf("reading the kubelet's answer: %v", err)))
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		l.tally.ExitUnknown(fmt.Sprintf("the kubelet answered %s to the upgrade", resp.Status))
		l.refuse(Refusal(l.b.node, l.b.address, resp))
		return
	}
	var head bytes.Buffer
	_ = resp.Write(&head) // a 101 has no body to fail on
	l.hs.answer, l.hs.in = head.Bytes(), in
}

// Close ends the connection, and what its frames told.
func (l *translatorConn) Close() error {
	var err error
	l.closeOnce.Do(func() {
		if l.route != nil {
			l.route.End()
		}
		if l.conn == nil {
			return
		}
		l.stop()
		err = l.conn.Close()
		l.interleaved.End()
		l.reader.Close()
		l.b.connClosed()
	})
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// WriteStdin writes a stdin DATA frame to the kubelet between the translator's frames.
func (l *translatorConn) WriteStdin(frame []byte) error {
	_, err := l.interleaved.WriteWhole(l.frames, frame, l.reader.FromClient)
	return err
}

// writeFrames is Write of the translator's frames once its request went to the kubelet.
func (l *translatorConn) writeFrames(p []byte) (int, error) {
	return len(p), l.interleaved.WritePieces(l.frames, p, l.reader.FromClient, l.noteStdin)
}

// noteStdin tells the stdin route once the translator's SYN_STREAM for stdin went to the kubelet.
func (l *translatorConn) noteStdin() {
	if l.route == nil || l.stdinOpened || l.streams == nil {
		return
	}
	if id, ok := l.streams.StreamID("stdin"); ok {
		l.stdinOpened = true
		l.route.Opened(l, id)
	}
}

// WaitStdin waits until the translator wrote n bytes of stdin to the kubelet; false if it will not.
func (l *translatorConn) WaitStdin(n int64) bool {
	return l.interleaved.WaitFor(func() bool { return l.tally.StreamBytes("stdin") >= n })
}

// The rest of net.Conn: a connection refused at the dial has no kubelet connection under it.

func (l *translatorConn) LocalAddr() net.Addr {
	if l.conn == nil {
		return &net.TCPAddr{}
	}
	return l.conn.LocalAddr()
}

func (l *translatorConn) RemoteAddr() net.Addr {
	if l.conn == nil {
		return &net.TCPAddr{}
	}
	return l.conn.RemoteAddr()
}

func (l *translatorConn) SetDeadline(t time.Time) error {
	if l.conn == nil {
		return nil
	}
	return l.conn.SetDeadline(t)
}

func (l *translatorConn) SetReadDeadline(t time.Time) error {
	if l.conn == nil {
		return nil
	}
	return l.conn.SetReadDeadline(t)
}

func (l *translatorConn) SetWriteDeadline(t time.Time) error {
	if l.conn == nil {
		return nil
	}
	return l.conn.SetWriteDeadline(t)
}
