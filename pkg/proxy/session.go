package proxy

import (
	"cmp"
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"

	"github.com/exec-proxy/exec-proxy/pkg/oversight"
	"github.com/exec-proxy/exec-proxy/pkg/policy"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/clientconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/kubeletconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/streamstats"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/wire"
)

// Identity is what a session is: who opened it, on which pod and kubelet, asking for what.
type Identity struct {
	ID        string
	Kind      session.Kind
	User      string
	Groups    []string
	Namespace string
	Pod       string
	Container string
	Node      string
	Address   string
	Asked
	// Justification is the reason the user gave for the session, if any.
	Justification string
	Start         time.Time
}

// Asked is what the session's request asked of the pod.
type Asked struct {
	Command []string
	TTY     bool
	Stdin   bool
	Stdout  bool // exec and attach: what the query asked for, which the kubelet reads by
	Stderr  bool
	Ports   []int32
}

// Session is one exec, attach or port-forward from upgrade to close: what it is and what crossed
// it. Its client side (package clientconn) and kubelet side (package kubeletconn) reach it through
// the methods of clientSide and kubeletSide, not its own exported ones.
type Session struct {
	Identity
	ctx     context.Context
	cancel  context.CancelFunc
	traffic traffic
	streams *streamstats.Stats // what the client connection's frames told
	// tap hears a TTY session's terminal for its watchers and its commands; nil: no TTY.
	tap     *oversight.Tap
	kubelet *kubeletconn.Side
	// decision is the session policy's: the rule the session falls under, its recording and limits.
	decision policy.Decision
	// start is the lifecycle step that runs as the kubelet's 101 reaches the client (see answered).
	start starter

	mu sync.Mutex
	// translated is what the translator's connection to the kubelet told (WebSocket exec and
	// attach), made when it connects.
	translated *streamstats.Stats
	reader     wire.FrameReader
	client     *clientconn.Conn
	answer     answer
	end        ending
}

// starter is the step of a session's lifecycle that starts it: the audit start record, the
// recording. An error refuses the session instead.
type starter interface {
	started(s *Session, protocol string) error
}

// answer is what the client was answered: the upgrade's code and protocol, or a Status's code.
type answer struct {
	code     int
	protocol string
}

// ending is why the session ended, as far as exec-proxy knows.
type ending struct {
	reason string // exec-proxy's, when it ended the session
	// clientClosed: the client closed its side of the connection; protocolError: the client's
	// frames were not the protocol's.
	clientClosed, protocolError atomic.Bool
}

// traffic is the bytes that crossed the client connection, when it was last active, and the
// bandwidth allowed.
type traffic struct {
	bytesIn, bytesOut, lastActive atomic.Int64
	in, out                       *rate.Limiter
	counters                      *sessionCounters
}

// newSession is the session id opens under decision, the session policy's; maxBytesPerSec is the
// flags' bandwidth, which the decision's replaces.
func newSession(ctx context.Context, id Identity, decision policy.Decision, maxBytesPerSec int64, start starter) *Session {
	s := &Session{Identity: id, reader: wire.Nop{}, start: start, decision: decision}
	s.tap = newTap(s, decision.Moderation)
	maxBytesPerSec = cmp.Or(decision.Limits.MaxBytesPerSec, maxBytesPerSec)
	s.Start = time.Now()
	s.streams = streamstats.New(streamstats.Hooks{
		Payload: func() { s.touch(true) },
		ClientProtocolError: func(string) {
			s.end.protocolError.Store(true)
			s.Kill(session.ReasonProtocolError)
		},
		Tap: s.tap,
	})
	s.ctx, s.cancel = context.WithCancel(ctx)
	if maxBytesPerSec > 0 {
		burst := max(int(maxBytesPerSec/10), clientconn.LimiterBurst) // a tenth of a second at full rate
		s.traffic.in = rate.NewLimiter(rate.Limit(maxBytesPerSec), burst)
		s.traffic.out = rate.NewLimiter(rate.Limit(maxBytesPerSec), burst)
	}
	s.traffic.counters = byteCounters()
	s.traffic.lastActive.Store(time.Now().UnixNano())
	s.kubelet = kubeletconn.NewSide(id.Node, id.Address, kubeletSide{s})
	return s
}

// PolicyRule is the session policy rule the session runs under; "" when none matched.
func (s *Session) PolicyRule() string { return s.decision.Rule }

// What the client connection tells the session, and asks of it (see clientSide).

func (s *Session) countIn(n int) {
	s.traffic.bytesIn.Add(int64(n))
	s.touch(false)
	s.traffic.counters.in.Add(float64(n))
}

func (s *Session) countOut(n int) {
	s.traffic.bytesOut.Add(int64(n))
	s.touch(false)
	s.traffic.counters.out.Add(float64(n))
}

func (s *Session) frameReader() wire.FrameReader {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reader
}

func (s *Session) protocolError() bool  { return s.end.protocolError.Load() }
func (s *Session) exitStatusTold() bool { return s.streams.Told() }
func (s *Session) clientClosed()        { s.end.clientClosed.Store(true) }

func (s *Session) attach(c *clientconn.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.client = c
	if s.end.reason != "" { // killed while dialing
		_ = c.Close()
	}
}

// answered reads the answer to the upgrade as it is about to reach the client. A 101 starts the
// session: its frames are read from here on, and the start step runs; its error refuses the
// session instead.
func (s *Session) answered(head []byte) (int, bool, error) {
	code, protocol, upgrade := clientconn.ParseResponseHead(head)
	webSocket := strings.EqualFold(upgrade, "websocket")
	s.mu.Lock()
	s.answer = answer{code: code, protocol: protocol}
	if code == http.StatusSwitchingProtocols {
		s.reader = s.streams.NewFrameReader(upgrade, protocol, s.shape())
		s.kubelet.Upgraded(strings.HasPrefix(strings.ToUpper(upgrade), "SPDY/"))
	}
	s.mu.Unlock()
	if code == http.StatusSwitchingProtocols {
		return code, webSocket, s.start.started(s, protocol)
	}
	return code, webSocket, nil
}

// shape is what the request asked for, which decides the streams the kubelet reads.
func (s *Session) shape() wire.Shape {
	return wire.Shape{Known: true, PortForward: s.Kind == session.KindPortForward, Ports: s.Ports,
		Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr && !s.TTY, TTY: s.TTY} // the kubelet drops stderr with a TTY
}

func (s *Session) refused(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer.code = code
}

func (s *Session) kubeletRefusal(raw []byte) error {
	return kubeletconn.RawRefusal(s.Node, s.Address, raw)
}

// What the translator's connection to the kubelet asks of the session (see kubeletSide).

// directConn is the client connection the translator's connection to the kubelet writes stdout and
// stderr frames to itself, or nil. The frames written directly are v5.channel.k8s.io's, the only
// protocol the translator speaks now.
func (s *Session) directConn() *clientconn.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil || s.answer.protocol != remotecommandconsts.StreamProtocolV5Name {
		return nil
	}
	return s.client.Direct()
}

// translatedStats is what hears the translator's connections to the kubelet, made once.
func (s *Session) translatedStats() *streamstats.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.translated == nil {
		s.translated = streamstats.New(streamstats.Hooks{})
	}
	return s.translated
}

// stdinRoute is where the client connection sends stdin directly, if it does.
func (s *Session) stdinRoute() *clientconn.StdinRoute {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	return s.client.StdinRoute()
}

// touch notes activity for the idle timeout. While the frames are read, only payload and resizes
// count (payload is true), not keep-alive pings; otherwise every byte does.
func (s *Session) touch(payload bool) {
	if payload || !s.streams.Reading() {
		s.traffic.lastActive.Store(time.Now().UnixNano())
	}
}

// BytesIn and BytesOut are what crossed the client connection, framing included.
func (s *Session) BytesIn() int64  { return s.traffic.bytesIn.Load() }
func (s *Session) BytesOut() int64 { return s.traffic.bytesOut.Load() }

// Streams is what a session's frames told.
type Streams struct {
	Bytes    map[string]int64 // payload per stream
	Resizes  int
	ExitCode string // a number, or "unknown: <why>"
	Ports    []int32
}

// Streams stops reading the session's frames and returns what they told. Call it once the session
// ended. A translated session's exit code is the kubelet's, read on the translator's connection.
func (s *Session) Streams() Streams {
	s.frameReader().Close()
	translated := s.kubelet.EndTranslator()
	var st Streams
	st.Bytes, st.Resizes, st.ExitCode = s.streams.Result()
	st.Ports = s.streams.ForwardedPorts()
	if translated {
		_, _, st.ExitCode = s.translatedStats().Result()
	}
	if s.Kind == session.KindPortForward {
		st.ExitCode = "unknown: port-forward sessions have no exit code"
	}
	return st
}

// Upgraded reports whether the client got a 101 and the negotiated protocol.
func (s *Session) Upgraded() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answer.code == http.StatusSwitchingProtocols, s.answer.protocol
}

// code is what the client was answered: the upgrade's code, a Status's, or 0.
func (s *Session) code() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answer.code
}

// Kill ends the session for reason; the first reason given wins.
func (s *Session) Kill(reason string) {
	s.mu.Lock()
	if s.end.reason == "" {
		s.end.reason = reason
	}
	c := s.client
	s.mu.Unlock()
	if s.cancel != nil { // nil in a Session made outside newSession (tests of its readers)
		s.cancel()
	}
	if c != nil {
		_ = c.Close()
	}
}

// EndReason is why exec-proxy ended the session, or "" when the peers did.
func (s *Session) EndReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end.reason
}

// endReason is why a session ended: exec-proxy's reason when it ended it, else what the streams told.
func endReason(s *Session, exitCode string) string {
	switch reason := s.EndReason(); {
	case reason != "":
		return reason
	case s.end.clientClosed.Load():
		return session.ReasonClientClosed
	case !strings.HasPrefix(exitCode, "unknown"):
		return session.ReasonExited
	}
	return session.ReasonKubeletClosed
}
