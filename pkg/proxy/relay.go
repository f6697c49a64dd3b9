package proxy

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
	"github.com/exec-proxy/exec-proxy/pkg/wire"
	wirespdy "github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
)

// relay is the stream translator's way to the kubelet. The translator writes its own request to
// the kubelet and reads the frames itself, so its transport's dialer hands it the session's
// verified kubelet connection, seen through a kubeletLeg, which
//   - adds exec-proxy's bearer token, when kubelets take one (the translator cannot add a header);
//   - reads the kubelet's frames: the translator reports a kubelet that vanished as a success
//     (an empty error stream), so the exit code of a WebSocket session is taken from this leg;
//   - gives the translator a refusal as a Status, which it passes on to the client whole.
type relay struct {
	kubelets *nodeconn.Transport
	// transport is what the translator is given: its dialer is the relay.
	transport *http.Transport
}

func newRelay(kubelets *nodeconn.Transport) *relay {
	r := &relay{kubelets: kubelets}
	r.transport = &http.Transport{DialContext: r.dial}
	return r
}

type sessionKey struct{}

func withSession(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

// dial hands over the session's kubelet connection. It never fails: what goes wrong reaches the
// translator as the kubelet's answer, a Status.
func (r *relay) dial(ctx context.Context, _, address string) (net.Conn, error) {
	s, _ := ctx.Value(sessionKey{}).(*Session)
	l := &kubeletLeg{r: r, s: s, reader: wire.Nop{}}
	if s != nil {
		l.route = s.stdinRoute()
	}
	conn, err := sessionKubelet(s, address)
	if err != nil {
		l.refuse(gatewayError(err.Error()))
		return l, nil
	}
	// Not a drainingConn: spdystream stops reading at the kubelet's GOAWAY, and then writes its own,
	// which must fail, not wait for the reading to end.
	l.backend = conn
	l.frames = wire.FrameWriter{W: s.kubeletWriter(conn), Cut: &wirespdy.FrameCutter{}}
	l.leg = s.addKubeletLeg()
	l.reader = l.leg.newFrameReader("SPDY/3.1", "")
	if c := s.directConn(); c != nil {
		l.direct, l.types = c, l.reader.(*wirespdy.FrameReader)
	} else if l.route != nil { // stdin goes through the translator too
		l.route.end()
	}
	l.stop = context.AfterFunc(s.legCtx, func() { _ = l.Close() })
	return l, nil
}

// kubeletLeg is the translator's connection to the kubelet. Reads and writes run on the
// translator's goroutines, one reader and one writer at a time, as spdystream has them.
type kubeletLeg struct {
	r       *relay
	s       *Session
	leg     *streamStats
	reader  wire.FrameReader
	backend net.Conn // the kubelet's connection; nil when refused at the dial
	stop    func() bool

	request []byte        // the translator's request until its head is whole
	sent    bool          // the request went to the kubelet, or was refused
	answer  []byte        // what the translator reads before the frames: the 101, or a refusal
	refused bool          // after the answer, the connection ends
	in      *bufio.Reader // the kubelet's bytes after its answer, once read

	frames wire.FrameWriter // the translator's frames to the kubelet

	// direct, when set, takes the payload of stdout and stderr from the kubelet's frames (see
	// readDirect); types names the streams.
	direct *sessionConn
	types  *wirespdy.FrameReader
	hdr    [wirespdy.FrameHeaderLen]byte // the header of the kubelet's frame being read
	pass   passOn                        // what the translator is still to read of it

	// lanes orders the translator's frames and the stdin frames written directly (writeData).
	lanes       interleaved
	route       *stdinRoute // where the client's stdin is told of the stdin stream, if it is
	stdinOpened bool

	closeOnce sync.Once
}

func (l *kubeletLeg) Write(p []byte) (int, error) {
	if l.refused { // the translator's request goes nowhere: it reads the refusal next
		return len(p), nil
	}
	if l.sent {
		return l.writeFrames(p)
	}
	l.request = append(l.request, p...)
	if bytes.Contains(l.request, []byte("\r\n\r\n")) {
		l.sent = true
		l.send()
	}
	return len(p), nil
}

// send forwards the translator's request to the kubelet, with exec-proxy's credentials.
func (l *kubeletLeg) send() {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(l.request)))
	l.request = nil
	if err != nil {
		l.refuse(gatewayError(fmt.Sprintf("the stream translator's request: %v", err)))
		return
	}
	req.URL.Scheme, req.URL.Host, req.RequestURI = "https", req.Host, ""
	if err := l.r.kubelets.Authorize(req.Header); err != nil {
		l.refuse(gatewayError(err.Error()))
		return
	}
	if err := req.Write(l.backend); err != nil {
		l.refuse(gatewayError(fmt.Sprintf("writing to the kubelet: %v", err)))
	}
}

// refuse answers the translator with err's Status instead of the kubelet's answer.
func (l *kubeletLeg) refuse(err error) {
	var b bytes.Buffer
	writeStatusResponse(&b, err)
	l.answer, l.refused, l.sent = b.Bytes(), true, true
	if l.route != nil {
		l.route.end()
	}
	if l.backend != nil {
		_ = l.backend.Close()
	}
}

func (l *kubeletLeg) Read(p []byte) (int, error) {
	if l.in == nil && !l.refused {
		l.readAnswer()
	}
	if len(l.answer) > 0 {
		n := copy(p, l.answer)
		l.answer = l.answer[n:]
		return n, nil
	}
	if l.refused {
		return 0, io.EOF
	}
	if l.direct != nil {
		return l.readDirect(p)
	}
	n, err := l.in.Read(p)
	l.reader.ToClient(p[:n])
	return n, err
}

// readAnswer reads the kubelet's answer to the upgrade: the translator gets the 101 alone, the
// frames after it, or a refusal as a Status made of the kubelet's.
func (l *kubeletLeg) readAnswer() {
	in := bufio.NewReader(l.backend)
	resp, err := http.ReadResponse(in, nil)
	if err != nil {
		l.refuse(gatewayError(fmt.Sprintf("reading the kubelet's answer: %v", err)))
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		l.leg.unknown(fmt.Sprintf("the kubelet answered %s to the upgrade", resp.Status))
		l.refuse(kubeletRefusal(l.s.Node, l.s.Address, resp))
		return
	}
	var head bytes.Buffer
	_ = resp.Write(&head) // a 101 has no body to fail on
	l.answer, l.in = head.Bytes(), in
}

// Close ends the leg: the kubelet's connection, and what its frames told.
func (l *kubeletLeg) Close() error {
	var err error
	l.closeOnce.Do(func() {
		if l.route != nil {
			l.route.end()
		}
		if l.backend == nil {
			return
		}
		l.stop()
		err = l.backend.Close()
		l.lanes.end()
		l.reader.Close()
		l.s.legs.Done()
	})
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// The rest of net.Conn: a leg refused at the dial has no connection under it.

func (l *kubeletLeg) LocalAddr() net.Addr {
	if l.backend == nil {
		return &net.TCPAddr{}
	}
	return l.backend.LocalAddr()
}

func (l *kubeletLeg) RemoteAddr() net.Addr {
	if l.backend == nil {
		return &net.TCPAddr{}
	}
	return l.backend.RemoteAddr()
}

func (l *kubeletLeg) SetDeadline(t time.Time) error {
	if l.backend == nil {
		return nil
	}
	return l.backend.SetDeadline(t)
}

func (l *kubeletLeg) SetReadDeadline(t time.Time) error {
	if l.backend == nil {
		return nil
	}
	return l.backend.SetReadDeadline(t)
}

func (l *kubeletLeg) SetWriteDeadline(t time.Time) error {
	if l.backend == nil {
		return nil
	}
	return l.backend.SetWriteDeadline(t)
}
