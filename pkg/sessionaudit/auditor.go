package sessionaudit

import (
	"context"
	"fmt"
	"net/http"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/audit"
	"k8s.io/klog/v2"
)

// FailurePolicy says what happens to a session whose start record cannot be written.
type FailurePolicy string

const (
	FailClosed FailurePolicy = "fail-closed" // refuse the session with a 503
	FailOpen   FailurePolicy = "fail-open"   // let it run; the loss is counted and logged
)

// Auditor sends records to an audit backend. A nil Auditor records nothing.
type Auditor struct {
	backend audit.Backend
	policy  FailurePolicy
	// Commands: TTY sessions' command lines are recorded (see Command).
	Commands bool
}

// NewAuditor returns an Auditor on backend; Run must be called before records are sent.
func NewAuditor(backend audit.Backend, policy FailurePolicy) *Auditor {
	return &Auditor{backend: backend, policy: policy}
}

// Run starts the backend; its goroutines end when stop is closed.
func (r *Auditor) Run(stop <-chan struct{}) error {
	if r == nil {
		return nil
	}
	if err := r.backend.Run(stop); err != nil {
		return fmt.Errorf("starting the session audit backend: %w", err)
	}
	return nil
}

// Shutdown delivers what is buffered. Call it after the last session has ended.
func (r *Auditor) Shutdown() {
	if r != nil {
		r.backend.Shutdown()
	}
}

// Started writes the start record. Under fail-closed, a record that could not be written is a 503
// the session must be refused with.
func (r *Auditor) Started(a *Attempt) error {
	if r == nil || a == nil {
		return nil
	}
	if r.send(recordStart, a.Snapshot()) || r.policy == FailOpen {
		return nil
	}
	err := apierrors.NewServiceUnavailable("exec-proxy could not write the session's audit record and refuses sessions it cannot audit (--session-audit-failure-policy=fail-closed)")
	a.Update(func(rec *Record) {
		rec.Reason, rec.Code, rec.Message = "audit unavailable", err.ErrStatus.Code, err.ErrStatus.Message
	})
	return err
}

// Attempt returns the attempt of ctx's request for a session of kind on namespace/pod. With
// auditing on, a session whose request has no attempt (WithAttempts did not read it as a session),
// or an attempt opened for another session, would run without its record or with a wrong one: it is
// refused with a 500, counted and logged. Without auditing the attempt is nil, which records nothing.
func (r *Auditor) Attempt(ctx context.Context, kind, namespace, pod string) (*Attempt, error) {
	a := AttemptFrom(ctx)
	if r == nil {
		return a, nil
	}
	var got Record
	if a != nil {
		got = a.Snapshot()
	}
	if a != nil && got.Kind == kind && got.Namespace == namespace && got.Pod == pod {
		return a, nil
	}
	missingTotal.WithLabelValues(kind).Inc()
	klog.FromContext(ctx).Error(nil, "Session refused: its request has no audit attempt for it", "kind", kind,
		"pod", klog.KRef(namespace, pod), "attempt", a != nil, "attemptKind", got.Kind, "attemptPod", klog.KRef(got.Namespace, got.Pod))
	return nil, apierrors.NewInternalError(fmt.Errorf("the session's audit attempt is missing: exec-proxy refuses a %s session on pod %s/%s that it would not audit", kind, namespace, pod))
}

// Ended writes the end record of a session that started.
func (r *Auditor) Ended(a *Attempt) {
	if r == nil || a == nil || !a.markRecorded() {
		return
	}
	r.send(recordEnd, a.Snapshot())
}

// Refused writes the one record of an attempt that never became a session.
func (r *Auditor) Refused(a *Attempt) {
	if r == nil || a == nil || !a.markRecorded() {
		return
	}
	r.send(recordRefused, a.Snapshot())
}

// EphemeralContainer writes a record of an ephemeral container that the kube route asks
// kube-apiserver to add to namespace/pod, under exec-proxy's identity, for user (kubectl debug):
// what the container runs, and kube-apiserver's answer (code 0 before it is asked; else the code,
// and the message when it refused). Under fail-closed, a record that could not be written is a 503
// the container must be refused with: its command would run unrecorded.
func (r *Auditor) EphemeralContainer(req *http.Request, user authnv1.UserInfo, namespace, pod string, c *corev1.EphemeralContainer, code int32, message string) error {
	if r == nil {
		return nil
	}
	rec := newRecord(req, namespace, pod, "ephemeralcontainers")
	rec.User = user
	// Command and args as the container runs them (an empty command runs the image's entrypoint).
	rec.Container, rec.Image, rec.Command = c.Name, c.Image, append(append([]string(nil), c.Command...), c.Args...)
	rec.TTY, rec.Stdin = c.TTY, c.Stdin
	rec.End, rec.Code, rec.Message = rec.Start, code, message
	if r.send(recordEphemeralContainer, rec) || r.policy == FailOpen {
		return nil
	}
	return apierrors.NewServiceUnavailable("exec-proxy could not write the ephemeral container's audit record and adds none it cannot audit (--session-audit-failure-policy=fail-closed)")
}

func (r *Auditor) send(kind string, rec Record) bool {
	return r.sendEvent(kind, event(kind, rec), rec.User.Username)
}

// sendEvent writes ev, a record of kind about user's session (or watch).
func (r *Auditor) sendEvent(kind string, ev *auditinternal.Event, user string) bool {
	if r.backend.ProcessEvents(ev) {
		recordsTotal.WithLabelValues(kind, "written").Inc()
		return true
	}
	recordsTotal.WithLabelValues(kind, "lost").Inc()
	klog.ErrorS(nil, "Session audit record not written", "record", kind, "session", ev.Annotations[AnnotationSessionID], "user", user,
		"object", klog.KRef(ev.ObjectRef.Namespace, ev.ObjectRef.Name), "policy", r.policy)
	return false
}
