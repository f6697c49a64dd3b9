package proxy

import (
	"context"
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/clientconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/kubeletconn"
	"github.com/exec-proxy/exec-proxy/pkg/recording"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// The steps of a session's life after open (Proxier.Handler): serve, start, end.

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
	h := &lastRecord{attempt: sessionaudit.AttemptFrom(req.Context()), hijacked: make(chan struct{}), over: make(chan struct{})}
	// WebSocket clients write whole frames; the translator reads them through its own buffer.
	sw := clientconn.NewResponseWriter(w, clientSide{s}, clientconn.Options{In: s.traffic.in, Out: s.traffic.out, OnHijack: h.hijack,
		Coalesce:    !wsstream.IsWebSocketRequest(req),
		DirectStdin: s.Stdin && s.traffic.in == nil && !kubeletconn.ViaUpgradeProxy(req, r.Kind, t.KubeletWebSockets),
		Joinable:    s.Stdin && s.TTY && s.Kind != session.KindPortForward})
	stop := context.AfterFunc(req.Context(), s.cancel)
	d := &detachedSession{h: h, done: done, logger: logger, sw: sw, s: s, r: r, t: t,
		req: req.WithContext(kubeletconn.WithSide(klog.NewContext(s.ctx, logger), s.kubelet))}
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
	h      *lastRecord
	done   func()
	logger klog.Logger
	sw     *clientconn.ResponseWriter
	req    *http.Request
	s      *Session
	r      session.Request
	t      *nodeconn.Target
}

// prepare checks the upgrade and connects to the kubelet, on the request's goroutine (see
// kubeletconn/side.go); it writes a Status and returns false when the session cannot go on.
func (p *Proxier) prepare(d *detachedSession) bool {
	w, req := d.sw, d.req
	if err := checkUpgrade(req, d.r.Kind); err != nil {
		session.WriteStatus(w, req, err)
		return false
	}
	// A moderated session waits here, before exec-proxy connects to its kubelet, for its moderator.
	if err := d.s.awaitModerator(d.logger); err != nil {
		session.WriteStatus(w, req, err)
		return false
	}
	// The upgrade-aware proxy forwards the request's headers; the translator writes its own
	// request. Neither is given exec-proxy's credentials: they are added where the request is
	// written (nodeconn.Transport.UpgradeTransport; the translator's connection to the kubelet).
	header := kubeletconn.Header(req.Header)
	// Before any upgrade is accepted (the WebSocket handlers accept the client's first): an
	// unreachable or untrusted kubelet is a Status, not an error inside a session.
	if err := d.s.kubelet.Dial(req.Context(), p.transport, d.s.traffic.out != nil, kubeletconn.ViaUpgradeProxy(req, d.r.Kind, d.t.KubeletWebSockets)); err != nil {
		kubeletconn.Responder{Node: d.t.Node, Address: d.t.Address}.Error(w, req, err)
		return false
	}
	req.Header = header // d.req is the session's own copy of the request
	return true
}

// runDetached relays the session; afterSession writes its end, after a panic too. Its frame
// stays under the upgrade-aware proxy's for the whole session, so it is kept small: the ending is
// in functions of its own.
func (p *Proxier) runDetached(d *detachedSession) {
	defer p.afterSession(d)
	p.upstreamHandler(d.req, &d.r, d.t).ServeHTTP(d.sw, d.req)
}

// startStep starts a session as the kubelet's 101 reaches the client (Session.Answered calls it):
// the audit start record, and the recording. An error refuses the session with its Status instead
// of the 101.
type startStep struct {
	p       *Proxier
	attempt *sessionaudit.Attempt
}

func (st *startStep) started(s *Session, protocol string) error {
	p, attempt := st.p, st.attempt
	attempt.Update(func(rec *sessionaudit.Record) {
		rec.Protocol, rec.Start = protocol, time.Now()
		if m := s.Moderation(); m != nil {
			rec.Moderators = m.Moderators()
		}
	})
	s.traffic.lastActive.Store(time.Now().UnixNano()) // a moderated session's idle time counts from here
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
		s.streams.StartRecording(sink)
	}
	recordCommands(s, p.Audit, attempt, sink)
	if m := s.Moderation(); m != nil {
		m.Start()
	}
	return nil
}

// afterSession ends a session, panicked or not, and lets serve's caller go.
func (p *Proxier) afterSession(d *detachedSession) {
	logPanic(d.logger, recover())
	defer close(d.h.over)
	defer d.done()
	defer d.s.cancel()
	defer d.s.kubelet.Close()
	defer d.s.endWatches()
	defer func() { logPanic(d.logger, recover()) }()
	p.ended(d.logger, d.sw, d.req, d.s)
	if d.h.finished() {
		sessionaudit.FinishDetached(p.Audit, d.h.attempt)
	}
}

// ended writes the session's end: log line, metrics and audit record.
func (p *Proxier) ended(logger klog.Logger, sw *clientconn.ResponseWriter, req *http.Request, s *Session) {
	streams := s.Streams()
	s.tap.Close() // the last line entered, recorded and marked before the recording and the session end
	reason := endReason(s, streams.ExitCode)
	recorded := stopRecording(req.Context(), s)
	p.finish(logger, s, sw, reason, streams.ExitCode)
	attempt := sessionaudit.AttemptFrom(req.Context())
	attempt.Update(func(rec *sessionaudit.Record) {
		rec.Recording, rec.RecordingDropped, rec.RecordingError = recorded.file, recorded.dropped, recorded.err
		if m := s.Moderation(); m != nil {
			rec.Moderators = m.Moderated() // in the end record: everyone who moderated
		}
	})
	p.audit(attempt, s, sw, reason, streams)
}

// finish counts and logs the session once it is over.
func (p *Proxier) finish(logger klog.Logger, s *Session, sw *clientconn.ResponseWriter, reason, exitCode string) {
	upgraded, protocol := s.Upgraded()
	outcome := "upgraded"
	switch {
	case !upgraded && sw.Status() >= 500:
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
func (p *Proxier) audit(a *sessionaudit.Attempt, s *Session, sw *clientconn.ResponseWriter, reason string, streams Streams) {
	upgraded, _ := s.Upgraded()
	code := s.code()
	a.Update(func(rec *sessionaudit.Record) {
		rec.End, rec.BytesIn, rec.BytesOut = time.Now(), s.BytesIn(), s.BytesOut()
		rec.StreamBytes, rec.Resizes, rec.ExitCode = streams.Bytes, streams.Resizes, streams.ExitCode
		if len(rec.Ports) == 0 {
			rec.Ports = streams.Ports
		}
		switch {
		case upgraded:
			rec.Reason = reason
		case rec.Code == 0 && code != 0 && sw.Status() == 0: // the kubelet's answer, relayed raw
			rec.Code, rec.Message, rec.Reason = int32(code), fmt.Sprintf("the kubelet answered %d to the upgrade", code), session.ReasonNotUpgraded
		}
	})
	if upgraded {
		p.Audit.Ended(a)
	}
}

// openRecording makes s's recording when the flags or the session policy ask for one (nil otherwise). A
// recording that cannot be made is logged and the session goes on, the audit records remain;
// unless recording is fail-closed: then the session is refused.
func (p *Proxier) openRecording(ctx context.Context, s *Session) (recording.Sink, *apierrors.StatusError) {
	whose := recording.Session{ID: s.ID, Kind: s.Kind, Namespace: s.Namespace, Pod: s.Pod, Container: s.Container,
		User: s.User, Groups: s.Groups, Command: s.Command, TTY: s.TTY}
	record, stdin := p.Recording.Decide(whose, s.decision.Recording)
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
	if err != nil {
		recordingsTotal.WithLabelValues("not_started").Inc()
	}
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
	sink := s.streams.Recording()
	if sink == nil {
		return recordingResult{}
	}
	var res recordingResult
	err := sink.Close()
	res.file = sink.Path() // after Close: where the recording stays (the bucket's object or the spool file)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Recording incomplete", "session", s.ID, "file", res.file)
		res.err = err.Error()
	}
	res.dropped = sink.Dropped()
	recordingsTotal.WithLabelValues(res.result()).Inc()
	return res
}
