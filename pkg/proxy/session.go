package proxy

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"

	"github.com/exec-proxy/exec-proxy/pkg/holdback"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/wire"
)

// Session is one exec, attach or port-forward from upgrade to close.
type Session struct {
	ID        string
	Kind      session.Kind
	User      string
	Groups    []string
	Namespace string
	Pod       string
	Container string
	Node      string
	Address   string
	Command   []string
	TTY       bool
	Stdin     bool
	Stdout    bool // exec and attach: what the query asked for, which the kubelet reads by
	Stderr    bool
	Ports     []int32
	Start     time.Time

	ctx      context.Context
	cancel   context.CancelFunc
	inLimit  *rate.Limiter
	outLimit *rate.Limiter
	counters *sessionCounters

	bytesIn    atomic.Int64
	bytesOut   atomic.Int64
	lastActive atomic.Int64
	// clientClosed is set when the client closed its side of the connection.
	clientClosed atomic.Bool
	// protocolError is set when the client's frames were not the protocol's.
	protocolError atomic.Bool
	// relaying is set once the kubelet's 101 is seen: the copies of the session run from then.
	relaying atomic.Bool
	// kubeletSPDY: the kubelet's 101 went to the client as it came, and it speaks SPDY.
	kubeletSPDY atomic.Bool
	// clientWebSocket: the client was answered with a WebSocket.
	clientWebSocket atomic.Bool

	// onUpgrade runs as the 101 is about to reach the client; an error refuses the session instead.
	onUpgrade func(protocol string) error

	stats *streamStats
	// leg is what the translator's connection to the kubelet told (WebSocket sessions only);
	// legs counts its relays still running.
	leg  *streamStats
	legs sync.WaitGroup
	// legCtx ends the relays when the translator is done with them.
	legCtx  context.Context
	endLegs context.CancelFunc

	mu        sync.Mutex
	reader    wire.FrameReader
	conn      *sessionConn
	backend   *drainingConn // the upgrade-aware proxy's connection to the kubelet
	kubelet   net.Conn      // dialed and verified, until the upgrade takes it
	code      int
	protocol  string
	endReason string

	// kubeletReading follows the reads from a bandwidth-limited session's kubelet, so that
	// keep-alives wait while it may hold output exec-proxy has not read (see package holdback).
	kubeletReading *holdback.Reading
}

func newSession(ctx context.Context, maxBytesPerSec int64) *Session {
	s := &Session{Start: time.Now(), stats: newStreamStats(), reader: wire.Nop{}}
	s.stats.onPayload = func() { s.touch(true) }
	s.stats.onClientProtocolError = func(string) {
		s.protocolError.Store(true)
		s.Kill(session.ReasonProtocolError)
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.legCtx, s.endLegs = context.WithCancel(context.Background())
	if maxBytesPerSec > 0 {
		burst := max(int(maxBytesPerSec/10), limiterBurst) // a tenth of a second at full rate
		s.inLimit = rate.NewLimiter(rate.Limit(maxBytesPerSec), burst)
		s.outLimit = rate.NewLimiter(rate.Limit(maxBytesPerSec), burst)
	}
	s.lastActive.Store(nowNano())
	return s
}

func (s *Session) countIn(n int) {
	s.bytesIn.Add(int64(n))
	s.touch(false)
	s.counters.in.Add(float64(n))
}

func (s *Session) countOut(n int) {
	s.bytesOut.Add(int64(n))
	s.touch(false)
	s.counters.out.Add(float64(n))
}

// BytesIn and BytesOut are what crossed the client connection, framing included.
func (s *Session) BytesIn() int64  { return s.bytesIn.Load() }
func (s *Session) BytesOut() int64 { return s.bytesOut.Load() }

func (s *Session) attach(c *sessionConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn = c
	if s.endReason != "" { // killed while dialing
		_ = c.Close()
	}
}

func (s *Session) setBackend(c *drainingConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backend = c
}

// noteResponse reads the answer to the upgrade and returns its code; an error from onUpgrade
// refuses the session.
func (s *Session) noteResponse(p []byte) (int, error) {
	code, protocol, upgrade := parseResponseHead(p)
	s.mu.Lock()
	s.code, s.protocol = code, protocol
	if code == http.StatusSwitchingProtocols {
		s.stats.shape = wire.Shape{Known: true, PortForward: s.Kind == session.KindPortForward, Ports: s.Ports,
			Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr && !s.TTY, TTY: s.TTY} // the kubelet drops stderr with a TTY
		s.reader = s.stats.newFrameReader(upgrade, protocol)
		s.kubeletSPDY.Store(strings.HasPrefix(strings.ToUpper(upgrade), "SPDY/"))
		s.clientWebSocket.Store(strings.EqualFold(upgrade, "websocket"))
		if s.backend != nil {
			s.backend.arm()
		}
		s.relaying.Store(true)
	}
	s.mu.Unlock()
	if code == http.StatusSwitchingProtocols && s.onUpgrade != nil {
		return code, s.onUpgrade(protocol)
	}
	return code, nil
}

// touch notes activity for the idle timeout. While the frames are read, only payload and resizes
// count (payload is true), not keep-alive pings; otherwise every byte does.
func (s *Session) touch(payload bool) {
	if payload || !s.stats.reading.Load() {
		s.lastActive.Store(nowNano())
	}
}

func (s *Session) frameReader() wire.FrameReader {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reader
}

// directConn is the client connection a kubelet leg writes stdout and stderr to itself (see
// readDirect), or nil: a bandwidth-limited session's frames go through its queue instead. The
// frames written directly are v5.channel.k8s.io's, the only protocol the translator speaks now.
func (s *Session) directConn() *sessionConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil || s.conn.frames == nil || s.protocol != remotecommandconsts.StreamProtocolV5Name {
		return nil
	}
	return s.conn
}

// stdinRoute is where the client connection sends stdin directly, if it does.
func (s *Session) stdinRoute() *stdinRoute {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil || s.conn.stdin == nil {
		return nil
	}
	return s.conn.stdin.route
}

// addKubeletLeg counts one more relay to the kubelet and returns the stats they share.
func (s *Session) addKubeletLeg() *streamStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leg == nil {
		s.leg = newStreamStats()
	}
	s.legs.Add(1)
	return s.leg
}

// Streams is what a session's frames told.
type Streams struct {
	Bytes    map[string]int64 // payload per stream
	Resizes  int
	ExitCode string // a number, or "unknown: <why>"
	Ports    []int32
}

// Streams stops reading the session's frames and returns what they told. Call it once the session
// ended. A translated session's exit code is the kubelet's, read on the translator's kubelet leg.
func (s *Session) Streams() Streams {
	s.frameReader().Close()
	s.endLegs()
	s.legs.Wait()
	var st Streams
	st.Bytes, st.Resizes, st.ExitCode = s.stats.result()
	st.Ports = s.stats.forwardedPorts()
	s.mu.Lock()
	leg := s.leg
	s.mu.Unlock()
	if leg != nil {
		_, _, st.ExitCode = leg.result()
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
	return s.code == 101, s.protocol
}

// Kill ends the session for reason; the first reason given wins.
func (s *Session) Kill(reason string) {
	s.mu.Lock()
	if s.endReason == "" {
		s.endReason = reason
	}
	c := s.conn
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
	return s.endReason
}

// registry tracks live sessions for timeouts and draining at shutdown.
type registry struct {
	mu       sync.Mutex
	sessions map[*Session]struct{}
	draining bool
	empty    chan struct{} // closed when draining and no session is left
}

func newRegistry() *registry { return &registry{sessions: map[*Session]struct{}{}} }

func (r *registry) add(s *Session) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.draining {
		return apierrors.NewServiceUnavailable("exec-proxy is shutting down and takes no new sessions; retry to reach another replica")
	}
	r.sessions[s] = struct{}{}
	sessionsActive.Set(float64(len(r.sessions)))
	return nil
}

func (r *registry) remove(s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.sessions, s)
	sessionsActive.Set(float64(len(r.sessions)))
	if r.draining && len(r.sessions) == 0 && r.empty != nil {
		close(r.empty)
		r.empty = nil
	}
}

func (r *registry) snapshot() []*Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Session, 0, len(r.sessions))
	for s := range r.sessions {
		out = append(out, s)
	}
	return out
}

// sweep ends sessions past their idle timeout or maximum duration.
func (r *registry) sweep(now time.Time, l Limits) {
	for _, s := range r.snapshot() {
		switch {
		case l.MaxSessionDuration > 0 && now.Sub(s.Start) >= l.MaxSessionDuration:
			s.Kill(session.ReasonMaxDuration)
		case l.IdleTimeout > 0 && now.Sub(time.Unix(0, s.lastActive.Load())) >= l.IdleTimeout:
			s.Kill(session.ReasonIdleTimeout)
		}
	}
}

// drain refuses new sessions, lets live ones run until grace ends, then ends them and waits for
// their handlers to return (bounded by ctx).
func (r *registry) drain(ctx context.Context, grace time.Duration) int {
	r.mu.Lock()
	r.draining = true
	empty := make(chan struct{})
	if len(r.sessions) == 0 {
		close(empty)
	} else {
		r.empty = empty
	}
	r.mu.Unlock()

	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-empty:
		return 0
	case <-timer.C:
	case <-ctx.Done():
	}
	live := r.snapshot()
	for _, s := range live {
		s.Kill(session.ReasonProxyShutdown)
	}
	select {
	case <-empty:
	case <-ctx.Done():
	}
	return len(live)
}
