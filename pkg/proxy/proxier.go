// Package proxy relays exec, attach and port-forward sessions to kubelets with upstream's
// upgrade-aware proxy and stream translator, under exec-proxy's limits.
package proxy

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	upgradeproxy "k8s.io/apimachinery/pkg/util/proxy"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	translator "k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
	"github.com/exec-proxy/exec-proxy/pkg/recording"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// SessionIDHeader carries the session id on every answer, so a session or refusal can be found.
const SessionIDHeader = sessionaudit.SessionIDHeader

// Proxier serves sessions.
type Proxier struct {
	resolver  *nodeconn.Resolver
	transport *nodeconn.Transport
	limits    Limits
	admit     *admitter
	sessions  *registry
	relay     *relay          // the stream translator's way to the kubelet
	upgrades  *http.Transport // the upgrade-aware proxy's: it hands over the session's kubelet connection
	// credentialed dials with upgrades and adds exec-proxy's kubelet credentials below the
	// upgrade-aware proxy's logging of the request (see nodeconn.Transport.UpgradeTransport).
	credentialed upgradeproxy.UpgradeRequestRoundTripper
	// Audit writes the session's start and end records; nil writes none.
	Audit *sessionaudit.Auditor
	// Recording says which sessions are recorded, and where.
	Recording recording.Config
}

// New returns a Proxier; Run must be called for timeouts to apply.
func New(resolver *nodeconn.Resolver, transport *nodeconn.Transport, limits Limits) *Proxier {
	p := &Proxier{resolver: resolver, transport: transport, limits: limits,
		admit: newAdmitter(limits), sessions: newRegistry()}
	p.relay = newRelay(transport)
	p.upgrades = upgradeTransport()
	p.credentialed = transport.UpgradeTransport(p.upgrades)
	return p
}

// Run ends sessions past their idle timeout or maximum duration until ctx ends.
func (p *Proxier) Run(ctx context.Context) {
	if p.limits.IdleTimeout <= 0 && p.limits.MaxSessionDuration <= 0 {
		return
	}
	period := min(nonZeroMin(p.limits.IdleTimeout, p.limits.MaxSessionDuration)/10, time.Second)
	ticker := time.NewTicker(max(period, 10*time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C:
			p.sessions.sweep(now, p.limits)
		}
	}
}

// Drain refuses new sessions and ends live ones after grace. It returns how many it had to end.
func (p *Proxier) Drain(ctx context.Context, grace time.Duration) int {
	return p.sessions.drain(ctx, grace)
}

// Sessions lists the live sessions.
func (p *Proxier) Sessions() []*Session { return p.sessions.snapshot() }

// Handler returns the handler for one session, or a Status error the caller writes.
func (p *Proxier) Handler(ctx context.Context, r session.Request) (http.Handler, error) {
	// With auditing on, no session starts without its attempt: it holds the session's records.
	attempt, err := p.Audit.Attempt(ctx, string(r.Kind), r.Namespace, r.Pod)
	if err != nil {
		sessionsTotal.WithLabelValues(string(r.Kind), "refused").Inc()
		return nil, err
	}
	container, needContainer := r.Container()
	target, err := p.resolver.Resolve(r.Namespace, r.Pod, container, needContainer)
	if target != nil {
		attempt.Update(func(rec *sessionaudit.Record) {
			rec.PodUID, rec.Container, rec.Node, rec.KubeletAddress = target.Pod.UID, target.Container, target.Node, target.Address
		})
	}
	if err != nil {
		sessionsTotal.WithLabelValues(string(r.Kind), "refused").Inc()
		return nil, err
	}
	s := newSession(sessionContext(ctx), p.limits.MaxBytesPerSecSession)
	p.describe(ctx, s, r, target)
	s.onUpgrade = func(protocol string) error {
		attempt.Update(func(rec *sessionaudit.Record) { rec.Protocol, rec.Start = protocol, time.Now() })
		sink, err := p.openRecording(s.ctx, s)
		if err != nil {
			attempt.Update(func(rec *sessionaudit.Record) {
				rec.Reason, rec.Code, rec.Message = "recording unavailable", err.ErrStatus.Code, err.ErrStatus.Message
			})
			return err
		}
		if err := p.Audit.Started(attempt); err != nil {
			if sink != nil {
				sink.Discard()
			}
			return err
		}
		if sink != nil {
			s.stats.recording.Store(sink)
		}
		return nil
	}
	release, err := p.admit.admit(s.User, s.Node)
	if err != nil {
		if te, ok := err.(*throttleError); ok {
			throttledTotal.WithLabelValues(te.reason).Inc()
		}
		sessionsTotal.WithLabelValues(string(r.Kind), "throttled").Inc()
		return nil, err
	}
	if err := p.sessions.add(s); err != nil {
		release()
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p.serve(w, req, s, r, target, func() { p.sessions.remove(s); release() })
	}), nil
}

// sessionContext is the context a session runs in: it outlives the request's handler (serve), so it
// neither ends with the request's context nor holds its values (the handler chain's keep the
// server's response, with its buffers, alive); it carries the logger and the audit attempt.
func sessionContext(req context.Context) context.Context {
	ctx := klog.NewContext(context.Background(), klog.FromContext(req))
	return sessionaudit.WithAttempt(ctx, sessionaudit.AttemptFrom(req))
}

func (p *Proxier) describe(ctx context.Context, s *Session, r session.Request, t *nodeconn.Target) {
	// One id for the session, its log lines and its audit records.
	if a := sessionaudit.AttemptFrom(ctx); a != nil {
		s.ID = a.Snapshot().SessionID
	} else {
		s.ID = uuid.NewString()
	}
	s.Kind, s.Namespace, s.Pod, s.Container, s.Node, s.Address = r.Kind, r.Namespace, r.Pod, t.Container, t.Node, t.Address
	if u, ok := genericapirequest.UserFrom(ctx); ok {
		s.User, s.Groups = u.GetName(), u.GetGroups()
	}
	switch {
	case r.Exec != nil:
		s.Command, s.TTY, s.Stdin, s.Stdout, s.Stderr = r.Exec.Command, r.Exec.TTY, r.Exec.Stdin, r.Exec.Stdout, r.Exec.Stderr
	case r.Attach != nil:
		s.TTY, s.Stdin, s.Stdout, s.Stderr = r.Attach.TTY, r.Attach.Stdin, r.Attach.Stdout, r.Attach.Stderr
	case r.PortForward != nil:
		s.Ports = r.PortForward.Ports
	}
	s.counters = byteCounters()
}

// serve runs the session in a goroutine of its own, and returns once the client's connection is
// hijacked: the request's goroutine, grown deep by the handler chain, and what the chain holds for
// the request, are not kept for the whole life of the session. Until then the request's context
// still cancels the session (a client gone before the upgrade); done runs when the session is over.
func (p *Proxier) serve(w http.ResponseWriter, req *http.Request, s *Session, r session.Request, t *nodeconn.Target, done func()) {
	logger := klog.FromContext(req.Context()).WithValues("session", s.ID, "kind", s.Kind,
		"pod", klog.KObj(t.Pod), "container", s.Container, "node", s.Node, "user", s.User)
	if p.transport.Insecure {
		logger.Info("WARNING: kubelet certificate is not verified (--kubelet-insecure-skip-tls-verify); this session is open to man-in-the-middle")
	}
	w.Header().Set(SessionIDHeader, s.ID) // also set by the audit filter, when one runs
	h := &handoff{attempt: sessionaudit.AttemptFrom(req.Context()), hijacked: make(chan struct{}), over: make(chan struct{})}
	// WebSocket clients write whole frames; the translator reads them through its own buffer.
	sw := &sessionWriter{ResponseWriter: w, s: s, onHijack: h.hijack, coalesce: !wsstream.IsWebSocketRequest(req),
		directStdin: s.Stdin && s.inLimit == nil && !viaUpgradeProxy(req, r.Kind)}
	stop := context.AfterFunc(req.Context(), s.cancel)
	d := &detachedSession{h: h, done: done, logger: logger, sw: sw, s: s, r: r, t: t,
		req: req.WithContext(withSession(klog.NewContext(s.ctx, logger), s))}
	if p.prepare(d) {
		go p.runDetached(d)
	} else {
		p.afterSession(d) // refused, with a Status
	}
	select {
	case <-h.over:
	case <-h.hijacked:
		if !h.detach() {
			<-h.over // the session ended as its connection was taken: end as a refused request does
		}
	}
	stop()
}

// detachedSession is what a session's own goroutine needs.
type detachedSession struct {
	h      *handoff
	done   func()
	logger klog.Logger
	sw     *sessionWriter
	req    *http.Request
	s      *Session
	r      session.Request
	t      *nodeconn.Target
}

// runDetached relays the session; afterSession writes its end, after a panic too. Its frame
// stays under the upgrade-aware proxy's for the whole session, so it is kept small: the ending is
// in functions of its own.
func (p *Proxier) runDetached(d *detachedSession) {
	defer p.afterSession(d)
	p.upstreamHandler(d.req, &d.r, d.t).ServeHTTP(d.sw, d.req)
}

// afterSession ends a session, panicked or not, and lets serve's caller go.
func (p *Proxier) afterSession(d *detachedSession) {
	logPanic(d.logger, recover())
	defer close(d.h.over)
	defer d.done()
	defer d.s.cancel()
	defer d.s.closeKubelet()
	defer func() { logPanic(d.logger, recover()) }()
	p.ended(d.logger, d.sw, d.req, d.s)
	if d.h.finished() {
		sessionaudit.FinishDetached(p.Audit, d.h.attempt)
	}
}

// ended writes the session's end: log line, metrics and audit record.
func (p *Proxier) ended(logger klog.Logger, sw *sessionWriter, req *http.Request, s *Session) {
	streams := s.Streams()
	reason := endReason(s, streams.ExitCode)
	recorded := stopRecording(req.Context(), s)
	p.finish(logger, s, sw, reason, streams.ExitCode)
	attempt := sessionaudit.AttemptFrom(req.Context())
	attempt.Update(func(rec *sessionaudit.Record) {
		rec.Recording, rec.RecordingDropped, rec.RecordingError = recorded.file, recorded.dropped, recorded.err
	})
	p.audit(attempt, s, sw, reason, streams)
}

// prepare checks the upgrade and connects to the kubelet, on the request's goroutine (see
// kubeletconn.go); it writes a Status and returns false when the session cannot go on.
func (p *Proxier) prepare(d *detachedSession) bool {
	w, req := d.sw, d.req
	if err := checkUpgrade(req, d.r.Kind); err != nil {
		session.WriteStatus(w, req, err)
		return false
	}
	// The upgrade-aware proxy forwards the request's headers; the translator goes by the relay.
	// Neither is given exec-proxy's credentials: they are added where the request is written.
	header := kubeletHeader(req.Header)
	// Before any upgrade is accepted (the WebSocket handlers accept the client's first): an
	// unreachable or untrusted kubelet is a Status, not an error inside a session.
	if err := p.dialKubelet(req.Context(), d.s, viaUpgradeProxy(req, d.r.Kind)); err != nil {
		kubeletResponder{node: d.t.Node, address: d.t.Address}.Error(w, req, err)
		return false
	}
	req.Header = header // d.req is the session's own copy of the request
	return true
}

// finish counts and logs the session once it is over.
func (p *Proxier) finish(logger klog.Logger, s *Session, sw *sessionWriter, reason, exitCode string) {
	upgraded, protocol := s.Upgraded()
	outcome := "upgraded"
	switch {
	case !upgraded && sw.status >= 500:
		outcome = "kubelet_error"
	case !upgraded:
		outcome = "refused"
	}
	sessionsTotal.WithLabelValues(string(s.Kind), outcome).Inc()
	if upgraded {
		sessionDuration.WithLabelValues(string(s.Kind)).Observe(time.Since(s.Start).Seconds())
	}
	logger.Info("Session ended", "outcome", outcome, "protocol", protocol, "reason", reason, "exitCode", exitCode, "command", s.Command, "tty", s.TTY,
		"duration", time.Since(s.Start).Round(time.Millisecond), "bytesIn", s.BytesIn(), "bytesOut", s.BytesOut())
}

// audit completes the attempt's record: the end of a session, or the kubelet's refusal (which the
// chain's filter records, as it does every refusal).
func (p *Proxier) audit(a *sessionaudit.Attempt, s *Session, sw *sessionWriter, reason string, streams Streams) {
	upgraded, _ := s.Upgraded()
	a.Update(func(rec *sessionaudit.Record) {
		rec.End, rec.BytesIn, rec.BytesOut = time.Now(), s.BytesIn(), s.BytesOut()
		rec.StreamBytes, rec.Resizes, rec.ExitCode = streams.Bytes, streams.Resizes, streams.ExitCode
		if len(rec.Ports) == 0 {
			rec.Ports = streams.Ports
		}
		switch {
		case upgraded:
			rec.Reason = reason
		case rec.Code == 0 && s.code != 0 && sw.status == 0: // the kubelet's answer, relayed raw
			rec.Code, rec.Message, rec.Reason = int32(s.code), fmt.Sprintf("the kubelet answered %d to the upgrade", s.code), session.ReasonNotUpgraded
		}
	})
	if upgraded {
		p.Audit.Ended(a)
	}
}

// openRecording makes s's recording when the flags or the policy ask for one (nil otherwise). A
// recording that cannot be made is logged and the session goes on, the audit records remain;
// unless recording is fail-closed: then the session is refused.
func (p *Proxier) openRecording(ctx context.Context, s *Session) (recording.Sink, *apierrors.StatusError) {
	whose := recording.Session{ID: s.ID, Kind: s.Kind, Namespace: s.Namespace, Pod: s.Pod, Container: s.Container,
		User: s.User, Groups: s.Groups, Command: s.Command, TTY: s.TTY}
	record, stdin := p.Recording.Decide(whose)
	if !record {
		return nil, nil
	}
	var onFail func(error)
	if p.Recording.FailClosed {
		onFail = func(err error) {
			klog.FromContext(ctx).Error(err, "Ending the session: its recording cannot be written", "session", s.ID)
			s.Kill(session.ReasonRecordingFailed)
		}
	}
	sink, err := recording.New(p.Recording, whose, stdin, onFail)
	switch {
	case err != nil && p.Recording.FailClosed:
		klog.FromContext(ctx).Error(err, "Session refused: it must be recorded and cannot be", "session", s.ID)
		return nil, apierrors.NewServiceUnavailable("exec-proxy could not record the session and refuses sessions it must record and cannot (--recording-failure-policy=fail-closed)")
	case err != nil:
		klog.FromContext(ctx).Error(err, "Session not recorded", "session", s.ID)
		return nil, nil
	}
	return sink, nil
}

// recordingResult is what became of a session's recording.
type recordingResult struct {
	file, err string
	dropped   int64
}

// stopRecording ends s's recording, if any: its file, the events it dropped, and why it is
// incomplete, if it is.
func stopRecording(ctx context.Context, s *Session) recordingResult {
	sink, _ := s.stats.recording.Load().(recording.Sink)
	if sink == nil {
		return recordingResult{}
	}
	res := recordingResult{file: sink.Path()}
	if err := sink.Close(); err != nil {
		klog.FromContext(ctx).Error(err, "Recording incomplete", "session", s.ID, "file", sink.Path())
		res.err = err.Error()
	}
	res.dropped = sink.Dropped()
	return res
}

// endReason is why a session ended: exec-proxy's reason when it ended it, else what the streams told.
func endReason(s *Session, exitCode string) string {
	switch reason := s.EndReason(); {
	case reason != "":
		return reason
	case s.clientClosed.Load():
		return session.ReasonClientClosed
	case !strings.HasPrefix(exitCode, "unknown"):
		return session.ReasonExited
	}
	return session.ReasonKubeletClosed
}

// upstreamHandler is kube-apiserver's own composition: SPDY (and old WebSocket protocols) pass
// through the upgrade-aware proxy; WebSocket v5 exec/attach is translated to SPDY for the kubelet,
// and WebSocket port-forward is tunnelled. The choice is made here, as upstream's translatingHandler
// makes it, so that its frame is not under the session's goroutine for the session's life.
func (p *Proxier) upstreamHandler(req *http.Request, r *session.Request, t *nodeconn.Target) http.Handler {
	loc := tlsUnderneath(t.URL(kubeletPath(*r, t), kubeletQuery(*r)))
	uah := upgradeproxy.NewUpgradeAwareHandler(loc, p.upgrades, false, true, kubeletResponder{node: t.Node, address: t.Address})
	uah.RejectForwardingRedirects = true
	uah.UpgradeTransport = p.credentialed
	switch {
	case r.Kind == session.KindPortForward && wsstream.IsWebSocketRequestWithTunnelingProtocol(req):
		return translator.NewTunnelingHandler(uah)
	case viaUpgradeProxy(req, r.Kind):
		return uah
	}
	opts := translator.Options{}
	if r.Exec != nil {
		opts = translator.Options{Stdin: r.Exec.Stdin, Stdout: r.Exec.Stdout, Stderr: r.Exec.Stderr, Tty: r.Exec.TTY}
	} else if r.Attach != nil {
		opts = translator.Options{Stdin: r.Attach.Stdin, Stdout: r.Attach.Stdout, Stderr: r.Attach.Stderr, Tty: r.Attach.TTY}
	}
	return translator.NewStreamTranslatorHandler(loc, p.relay.transport, 0, opts)
}

func kubeletPath(r session.Request, t *nodeconn.Target) string {
	if r.Kind == session.KindPortForward {
		return fmt.Sprintf("/portForward/%s/%s", url.PathEscape(r.Namespace), url.PathEscape(r.Pod))
	}
	return fmt.Sprintf("/%s/%s/%s/%s", r.Kind, url.PathEscape(r.Namespace), url.PathEscape(r.Pod), url.PathEscape(t.Container))
}

// kubeletQuery is the kubelet's parameter spelling (input/output/error), as kube-apiserver sends it.
func kubeletQuery(r session.Request) url.Values {
	q := url.Values{}
	flag := func(name string, on bool) {
		if on {
			q.Add(name, "1")
		}
	}
	switch {
	case r.Exec != nil:
		flag(corev1.ExecStdinParam, r.Exec.Stdin)
		flag(corev1.ExecStdoutParam, r.Exec.Stdout)
		flag(corev1.ExecStderrParam, r.Exec.Stderr)
		flag(corev1.ExecTTYParam, r.Exec.TTY)
		for _, c := range r.Exec.Command {
			q.Add("command", c)
		}
	case r.Attach != nil:
		flag(corev1.ExecStdinParam, r.Attach.Stdin)
		flag(corev1.ExecStdoutParam, r.Attach.Stdout)
		flag(corev1.ExecStderrParam, r.Attach.Stderr)
		flag(corev1.ExecTTYParam, r.Attach.TTY)
	case r.PortForward != nil && len(r.PortForward.Ports) > 0:
		ports := make([]string, len(r.PortForward.Ports))
		for i, port := range r.PortForward.Ports {
			ports[i] = strconv.Itoa(int(port))
		}
		q.Add(corev1.PortHeader, strings.Join(ports, ","))
	}
	return q
}

func nonZeroMin(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}
