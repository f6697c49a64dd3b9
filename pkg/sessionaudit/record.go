// Package sessionaudit writes an audit record of every exec, attach and port-forward attempt:
// start and end records for sessions, one refused record for attempts that never upgraded. The
// records are audit.k8s.io/v1 Events sent to k8s.io/apiserver's audit backends.
package sessionaudit

import (
	"context"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// Record is what is known of one attempt.
type Record struct {
	Requester
	Target
	Rules
	Outcome
}

// Rules is what the cluster's admission and exec-proxy's session policy said of the attempt.
type Rules struct {
	// Admission is the audit annotations the cluster's admission plugins added (which policy or
	// webhook decided, and how), under their own keys; AdmissionWarnings are their warnings.
	Admission         map[string]string
	AdmissionWarnings []string
	// AdmissionDeniedBy names the policy or webhook that refused the attempt.
	AdmissionDeniedBy string
	// PolicyRule is the session policy rule the attempt fell under; it decided a refusal.
	PolicyRule string
	// Moderators are who moderated the session as it started (the start record), or at any time
	// (the end record), when its rule requires a moderator.
	Moderators []string
}

// Requester is who asked for the session, and through what.
type Requester struct {
	SessionID  string
	RequestURI string
	User       authnv1.UserInfo
	// Impersonator is who authenticated, when they acted as User with Impersonate-* headers sent
	// straight to exec-proxy. (Through kube-apiserver, its own audit has the impersonator.)
	Impersonator     *authnv1.UserInfo
	SourceIPs        []string
	UserAgent        string
	APIServerAuditID string // the Audit-ID kube-apiserver sent, to join both logs
	// KubectlCommand and KubectlSession are what kubectl says of itself (KEP-859's Kubectl-Command
	// and Kubectl-Session headers): "kubectl cp" tells a copy from an exec. The client asserts them.
	KubectlCommand, KubectlSession string
	// Justification is the reason the user gave for the session (kubectl execproxy exec --reason).
	Justification string
}

// Target is what the session was asked to do, and where.
type Target struct {
	Kind, Namespace, Pod string
	PodUID               types.UID
	Container, Node      string
	KubeletAddress       string
	Command              []string
	TTY, Stdin           bool
	Ports                []int32
	Protocol             string
	Image                string // an ephemeral container's
}

// Asked sets what the session asks of the pod from r, in place of what its query said (a mutating
// admission webhook changed it).
func (t *Target) Asked(r session.Request) {
	t.Container, _ = r.Container()
	t.Command, t.TTY, t.Stdin, t.Ports = nil, false, false, nil
	switch {
	case r.Exec != nil:
		t.Command, t.TTY, t.Stdin = r.Exec.Command, r.Exec.TTY, r.Exec.Stdin
	case r.Attach != nil:
		t.TTY, t.Stdin = r.Attach.TTY, r.Attach.Stdin
	case r.PortForward != nil:
		t.Ports = r.PortForward.Ports
	}
}

// Outcome is what became of the session: its traffic and end, or why it was refused.
type Outcome struct {
	Start, End        time.Time
	ExitCode          string           // a number, or "unknown: <why>"
	BytesIn, BytesOut int64            // on the client connection, framing included
	StreamBytes       map[string]int64 // payload per stream: stdin, stdout, stderr, data (port-forward)
	Resizes           int
	Recording         string // the asciicast file, if the session was recorded
	RecordingDropped  int64  // events the recording dropped rather than slow the session
	RecordingError    string // why the recording is incomplete, if it is
	Reason            string

	// Code and Message say why an attempt was refused.
	Code    int32
	Message string
}

// Attempt carries the record of one request through the handler chain: the filter opens it, the
// authorizer and the proxy fill it in, and whoever writes a record marks it so.
type Attempt struct {
	mu       sync.Mutex
	rec      Record
	recorded bool
	// detached: the session outlives its request's handler, and writes its own last record.
	detached bool
	// authenticated is who authenticated, before any impersonation (see the authz package).
	authenticated *authnv1.UserInfo
}

// SetAuthenticated notes who authenticated for the request.
func (a *Attempt) SetAuthenticated(u authnv1.UserInfo) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.authenticated = &u
}

// Authenticated is who authenticated for the request, once known.
func (a *Attempt) Authenticated() (authnv1.UserInfo, bool) {
	if a == nil {
		return authnv1.UserInfo{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.authenticated == nil {
		return authnv1.UserInfo{}, false
	}
	return *a.authenticated, true
}

// Detach says the session goes on after the request's handler returns: the filter then leaves the
// attempt's last record to the session (FinishDetached).
func (a *Attempt) Detach() {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.detached = true
}

// Detached reports whether the session went on after its request's handler returned.
func (a *Attempt) Detached() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.detached
}

type attemptKey struct{}

// WithAttempt returns ctx carrying a.
func WithAttempt(ctx context.Context, a *Attempt) context.Context {
	return context.WithValue(ctx, attemptKey{}, a)
}

// AttemptFrom returns the attempt of ctx's request, or nil outside a session request.
func AttemptFrom(ctx context.Context) *Attempt {
	a, _ := ctx.Value(attemptKey{}).(*Attempt)
	return a
}

// Update changes the record under the attempt's lock. Safe on a nil attempt.
func (a *Attempt) Update(fn func(*Record)) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	fn(&a.rec)
}

// Snapshot returns a copy of the record.
func (a *Attempt) Snapshot() Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rec
}

// markRecorded reports whether the attempt had no record yet, and marks it.
func (a *Attempt) markRecorded() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	first := !a.recorded
	a.recorded = true
	return first
}
