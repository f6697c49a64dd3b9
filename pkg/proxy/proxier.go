// Package proxy serves exec, attach and port-forward sessions: each session's life, from its
// request to its last audit record, around upstream's upgrade-aware proxy and stream translator,
// under exec-proxy's limits. A session's client side is package clientconn, its kubelet side
// package kubeletconn; ARCHITECTURE.md draws the path.
package proxy

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	upgradeproxy "k8s.io/apimachinery/pkg/util/proxy"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	translator "k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
	"github.com/exec-proxy/exec-proxy/pkg/peers"
	"github.com/exec-proxy/exec-proxy/pkg/policy"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/caps"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/kubeletconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/streamtranslator"
	"github.com/exec-proxy/exec-proxy/pkg/recording"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionadmission"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// SessionIDHeader carries the session id on every answer, so a session or refusal can be found.
const SessionIDHeader = sessionaudit.SessionIDHeader

// Proxier serves sessions.
type Proxier struct {
	resolver  *nodeconn.Resolver
	transport *nodeconn.Transport
	limits    Limits
	admit     *caps.Admitter
	sessions  *liveSessions
	// translator is the stream translator's transport; upgrades the upgrade-aware proxy's: both
	// hand over the session's kubelet connection (see package kubeletconn).
	translator, upgrades *http.Transport
	// credentialed dials with upgrades and adds exec-proxy's kubelet credentials below the
	// upgrade-aware proxy's logging of the request (see nodeconn.Transport.UpgradeTransport).
	credentialed upgradeproxy.UpgradeRequestRoundTripper
	// Audit writes the session's start and end records; nil writes none.
	Audit *sessionaudit.Auditor
	// Recording says which sessions are recorded, and where (the session policy may say otherwise).
	Recording recording.Config
	// Policy is the session policy in force; nil: none, the flags decide.
	Policy *policy.Source
	// Admission runs the cluster's admission for each session; nil: none.
	Admission *sessionadmission.Control
	// Locks refuses the sessions of locked users (package locks); nil: none.
	Locks Locks
}

// Locks refuses a user's sessions with a Status error while a lock applies to them.
type Locks interface {
	Check(user string, groups []string) error
}

// New returns a Proxier; Run must be called for timeouts to apply.
func New(resolver *nodeconn.Resolver, transport *nodeconn.Transport, limits Limits) *Proxier {
	p := &Proxier{resolver: resolver, transport: transport, limits: limits,
		admit: caps.New(limits.caps()), sessions: newLiveSessions()}
	setCapsMetric(limits.caps())
	p.translator = kubeletconn.TranslatorTransport(transport)
	p.upgrades = kubeletconn.UpgradeTransport()
	p.credentialed = transport.UpgradeTransport(p.upgrades)
	return p
}

// Run ends sessions past their idle timeout or maximum duration until ctx ends. The session
// policy's rules may set either, so with a policy it runs even when the flags set neither.
func (p *Proxier) Run(ctx context.Context) {
	if p.limits.IdleTimeout <= 0 && p.limits.MaxSessionDuration <= 0 && p.Policy == nil {
		return
	}
	period := time.Second
	if d := nonZeroMin(p.limits.IdleTimeout, p.limits.MaxSessionDuration); d > 0 {
		period = min(d/10, period)
	}
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

// CountElsewhere makes the caps count the other replicas' sessions too; call it before serving.
func (p *Proxier) CountElsewhere(e caps.Elsewhere) { p.admit.CountElsewhere(e) }

// SessionCounts are this replica's sessions by user and rule, as the other replicas are told.
func (p *Proxier) SessionCounts() peers.Counts { return p.admit.Counts() }

// Sessions lists the live sessions.
func (p *Proxier) Sessions() []*Session { return p.sessions.snapshot() }

// Handler opens a session and returns its handler, or a Status error the caller writes. A
// session's life is four steps, each a function here or in lifecycle.go, in this order:
//   - open (Handler): the audit attempt, the cluster's admission, the pod's kubelet, the session
//     policy, the limits;
//   - serve (serve, prepare): the kubelet dialed and verified on the request's goroutine, then the
//     upgrade-aware proxy or the translator on the session's own (runDetached);
//   - start (startStep.started): as the kubelet's 101 reaches the client connection, which hands it
//     to Session.Answered: the audit start record and the recording; an error refuses the session;
//   - end (afterSession, ended): the end record, the metrics and the log line.
func (p *Proxier) Handler(ctx context.Context, r session.Request) (http.Handler, error) {
	// With auditing on, no session starts without its attempt: it holds the session's records.
	attempt, err := p.Audit.Attempt(ctx, string(r.Kind), r.Namespace, r.Pod)
	if err != nil {
		sessionsTotal.WithLabelValues(string(r.Kind), "refused").Inc()
		return nil, err
	}
	// Every record of the attempt carries the reason the user gave, refusals before the pod too.
	attempt.Update(func(rec *sessionaudit.Record) { rec.Justification = r.Justification })
	if err := p.checkLocks(ctx); err != nil {
		sessionsTotal.WithLabelValues(string(r.Kind), "refused").Inc()
		return nil, err
	}
	// kube-apiserver runs admission before it reads the pod: so does exec-proxy.
	r, err = p.admission(ctx, r, attempt)
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
	id := identity(ctx, r, target)
	decision, err := p.Policy.Current().Decide(policySession(id, target))
	attempt.Update(func(rec *sessionaudit.Record) { rec.PolicyRule = decision.Rule })
	if err != nil {
		sessionsTotal.WithLabelValues(string(r.Kind), "refused").Inc()
		return nil, err
	}
	s := newSession(sessionContext(ctx), id, decision, p.limits.MaxBytesPerSecSession, &startStep{p: p, attempt: attempt})
	release, err := p.admit.Admit(s.User, s.Node, caps.Rule{Name: decision.Rule, MaxSessions: decision.Limits.MaxSessions, MaxPerUser: decision.Limits.MaxSessionsPerUser})
	if err != nil {
		if te, ok := err.(*caps.ThrottleError); ok {
			throttledTotal.WithLabelValues(te.Reason()).Inc()
		}
		sessionsTotal.WithLabelValues(string(r.Kind), "throttled").Inc()
		return nil, err
	}
	if err := p.sessions.add(s); err != nil {
		release()
		return nil, err
	}
	// Again once live: a lock that came since the first check ended the sessions live then only.
	if err := p.checkLocks(ctx); err != nil {
		p.sessions.remove(s)
		release()
		sessionsTotal.WithLabelValues(string(r.Kind), "refused").Inc()
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p.serve(w, req, s, r, target, func() { p.sessions.remove(s); release() })
	}), nil
}

// CheckLocks refuses the request's user while a lock applies to them: a locked user joins no session either.
func (p *Proxier) CheckLocks(ctx context.Context) error { return p.checkLocks(ctx) }

// checkLocks refuses the request's user while a lock applies to them.
func (p *Proxier) checkLocks(ctx context.Context) error {
	if p.Locks == nil {
		return nil
	}
	u, ok := genericapirequest.UserFrom(ctx)
	if !ok {
		return nil // the chain authenticated every session request; tests may not
	}
	return p.Locks.Check(u.GetName(), u.GetGroups())
}

// admission runs the cluster's admission for r and keeps what it said in the audit record. A
// mutating webhook's options are the session's from then on, as kube-apiserver connects with them.
func (p *Proxier) admission(ctx context.Context, r session.Request, attempt *sessionaudit.Attempt) (session.Request, error) {
	if p.Admission == nil {
		return r, nil
	}
	u, _ := genericapirequest.UserFrom(ctx)
	res, err := p.Admission.Admit(ctx, r, u)
	if len(res.Annotations) > 0 || len(res.Warnings) > 0 || res.DeniedBy != "" {
		attempt.Update(func(rec *sessionaudit.Record) {
			rec.Admission, rec.AdmissionWarnings, rec.AdmissionDeniedBy = res.Annotations, res.Warnings, res.DeniedBy
		})
	}
	if err != nil || res.Mutated == nil {
		return r, err
	}
	mutated, err := session.NewRequest(r.Kind, r.Namespace, r.Pod, res.Mutated)
	if err != nil {
		return r, apierrors.NewBadRequest("a mutating admission webhook changed the session into one that cannot be opened: " + err.Error())
	}
	mutated.Justification = r.Justification
	attempt.Update(func(rec *sessionaudit.Record) { rec.Target.Asked(mutated) })
	return mutated, nil
}

// sessionContext is the context a session runs in: it outlives the request's handler (serve), so it
// neither ends with the request's context nor holds its values (the handler chain's keep the
// server's response, with its buffers, alive); it carries the logger and the audit attempt.
func sessionContext(req context.Context) context.Context {
	ctx := klog.NewContext(context.Background(), klog.FromContext(req))
	return sessionaudit.WithAttempt(ctx, sessionaudit.AttemptFrom(req))
}

// identity is what the session of request r on target is.
func identity(ctx context.Context, r session.Request, t *nodeconn.Target) Identity {
	id := Identity{Kind: r.Kind, Namespace: r.Namespace, Pod: r.Pod, Container: t.Container, Node: t.Node, Address: t.Address,
		Justification: r.Justification}
	// One id for the session, its log lines and its audit records.
	if a := sessionaudit.AttemptFrom(ctx); a != nil {
		id.ID = a.Snapshot().SessionID
	} else {
		id.ID = uuid.NewString()
	}
	if u, ok := genericapirequest.UserFrom(ctx); ok {
		id.User, id.Groups = u.GetName(), u.GetGroups()
	}
	switch {
	case r.Exec != nil:
		id.Command, id.TTY, id.Stdin, id.Stdout, id.Stderr = r.Exec.Command, r.Exec.TTY, r.Exec.Stdin, r.Exec.Stdout, r.Exec.Stderr
	case r.Attach != nil:
		id.TTY, id.Stdin, id.Stdout, id.Stderr = r.Attach.TTY, r.Attach.Stdin, r.Attach.Stdout, r.Attach.Stderr
	case r.PortForward != nil:
		id.Ports = r.PortForward.Ports
	}
	return id
}

// policySession is what the session policy decides id on t by.
func policySession(id Identity, t *nodeconn.Target) policy.Session {
	return policy.Session{Kind: id.Kind, Namespace: id.Namespace, Pod: id.Pod, PodLabels: t.Pod.Labels, User: id.User, Groups: id.Groups,
		Command: id.Command, TTY: id.TTY, Stdin: id.Stdin, Justification: id.Justification}
}

// upstreamHandler is kube-apiserver's own composition: SPDY (and old WebSocket protocols) pass
// through the upgrade-aware proxy; WebSocket v5 exec/attach is translated to SPDY for the kubelet,
// and WebSocket port-forward is tunnelled, unless the kubelet serves WebSocket itself (1.36 on).
// The frame readers read the same frames either way. The choice is made here, as upstream's
// translatingHandler makes it, so that its frame is not under the session's goroutine for good.
func (p *Proxier) upstreamHandler(req *http.Request, r *session.Request, t *nodeconn.Target) http.Handler {
	loc := kubeletconn.TLSUnderneath(t.URL(kubeletconn.Path(*r, t.Container), kubeletconn.Query(*r)))
	uah := upgradeproxy.NewUpgradeAwareHandler(loc, p.upgrades, false, true, kubeletconn.Responder{Node: t.Node, Address: t.Address})
	uah.RejectForwardingRedirects = true
	uah.UpgradeTransport = p.credentialed
	translated := !kubeletconn.ViaUpgradeProxy(req, r.Kind, t.KubeletWebSockets)
	tunnelled := !t.KubeletWebSockets && r.Kind == session.KindPortForward && wsstream.IsWebSocketRequestWithTunnelingProtocol(req)
	kubeletconn.CountWebSocket(req, string(r.Kind), translated || tunnelled)
	switch {
	case tunnelled:
		return translator.NewTunnelingHandler(uah)
	case !translated:
		return uah
	}
	opts := translator.Options{}
	if r.Exec != nil {
		opts = translator.Options{Stdin: r.Exec.Stdin, Stdout: r.Exec.Stdout, Stderr: r.Exec.Stderr, Tty: r.Exec.TTY}
	} else if r.Attach != nil {
		opts = translator.Options{Stdin: r.Attach.Stdin, Stdout: r.Attach.Stdout, Stderr: r.Attach.Stderr, Tty: r.Attach.TTY}
	}
	return streamtranslator.New(loc, p.translator.DialContext, opts)
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
