package sessionaudit

import (
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
)

// Records of a watch of a live session (execsessions/attach), as the watch starts and as it ends.
const (
	recordWatchStart = "watch-start"
	recordWatchEnd   = "watch-end"
	// AnnotationWatchedSession is the session watched; AnnotationSessionID is the watch's own id.
	AnnotationWatchedSession = prefix + "watched-session"
	// AnnotationSessionUser is the user whose session was watched.
	AnnotationSessionUser = prefix + "session-user"
)

// Watch is one watch of a live session: who watched which session, from when, until when and why.
type Watch struct {
	ID               string // the watch's own id
	APIServerAuditID string
	RequestURI       string
	SourceIPs        []string
	UserAgent        string
	Watcher          authnv1.UserInfo
	// The session watched.
	Session, SessionUser, Namespace, Pod, Container string
	Start, End                                      time.Time
	Reason                                          string // why the watch ended
}

// NewWatch begins the record of req's watch of a session, by watcher.
func NewWatch(req *http.Request, watcher authnv1.UserInfo) Watch {
	w := Watch{ID: uuid.NewString(), APIServerAuditID: req.Header.Get("Audit-ID"), RequestURI: req.RequestURI,
		UserAgent: req.UserAgent(), Watcher: watcher, Start: time.Now()}
	for _, ip := range utilnet.SourceIPs(req) {
		w.SourceIPs = append(w.SourceIPs, ip.String())
	}
	return w
}

// WatchStarted writes a watch's start record. Under fail-closed, a record that could not be written
// is a 503 the watch must be refused with: no one watches a session unrecorded.
func (r *Auditor) WatchStarted(w Watch) error {
	if r == nil || r.sendEvent(recordWatchStart, w.event(recordWatchStart), w.Watcher.Username) || r.policy == FailOpen {
		return nil
	}
	return apierrors.NewServiceUnavailable("exec-proxy could not write the watch's audit record and refuses watches it cannot audit (--session-audit-failure-policy=fail-closed)")
}

// WatchEnded writes a watch's end record.
func (r *Auditor) WatchEnded(w Watch) {
	if r != nil {
		r.sendEvent(recordWatchEnd, w.event(recordWatchEnd), w.Watcher.Username)
	}
}

func (w Watch) event(kind string) *auditinternal.Event {
	stage, at := auditinternal.StageResponseStarted, w.Start
	if kind == recordWatchEnd {
		stage, at = auditinternal.StageResponseComplete, w.End
	}
	a := map[string]string{
		AnnotationRecord: kind, AnnotationSessionID: w.ID, AnnotationWatchedSession: w.Session,
		AnnotationSessionUser: w.SessionUser, AnnotationStart: w.Start.UTC().Format(timeFormat),
	}
	if w.Container != "" {
		a[AnnotationContainer] = w.Container
	}
	if w.APIServerAuditID != "" {
		a[AnnotationAuditID] = w.APIServerAuditID
	}
	if kind == recordWatchEnd {
		a[AnnotationEnd] = w.End.UTC().Format(timeFormat)
		a[AnnotationDuration] = strconv.FormatFloat(w.End.Sub(w.Start).Seconds(), 'f', 3, 64)
		a[AnnotationReason] = w.Reason
	}
	return &auditinternal.Event{
		Level: auditinternal.LevelMetadata, AuditID: types.UID(w.ID), Stage: stage, RequestURI: w.RequestURI,
		Verb: "get", User: w.Watcher, SourceIPs: w.SourceIPs, UserAgent: w.UserAgent,
		RequestReceivedTimestamp: metav1.NewMicroTime(w.Start), StageTimestamp: metav1.NewMicroTime(at),
		ObjectRef: &auditinternal.ObjectReference{Resource: "execsessions", Subresource: "attach", Namespace: w.Namespace,
			Name: w.Session, APIGroup: "execproxy.dev", APIVersion: "v1alpha1"},
		ResponseStatus: &metav1.Status{Code: http.StatusSwitchingProtocols},
		Annotations:    a,
	}
}
