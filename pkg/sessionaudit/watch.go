package sessionaudit

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
)

// Records of a watch of a live session (execsessions/attach), as the watch starts and as it ends;
// of a join (a watch that also types into the session) likewise.
const (
	recordWatchStart = "watch-start"
	recordWatchEnd   = "watch-end"
	recordJoinStart  = "join-start"
	recordJoinEnd    = "join-end"
	// AnnotationWatchedSession is the session watched; AnnotationSessionID is the watch's own id.
	AnnotationWatchedSession = prefix + "watched-session"
	// AnnotationSessionUser is the user whose session was watched.
	AnnotationSessionUser = prefix + "session-user"
)

// Watch is one watch of a live session: who watched which session, from when, until when and why.
// A join is a watch whose watcher also typed into the session.
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
	// Join: the watcher could type into the session (kubectl execproxy join); Typed is how many
	// bytes of stdin it typed (in the end record, as bytes-stdin).
	Join  bool
	Typed int64
	// Moderator: the watcher counted as a moderator of a session its rule holds under moderation.
	Moderator bool
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
	kind := w.kinds()[0]
	if r == nil || r.sendEvent(kind, w.event(kind), w.Watcher.Username) || r.policy == FailOpen {
		return nil
	}
	return apierrors.NewServiceUnavailable("exec-proxy could not write the " + strings.TrimSuffix(kind, "-start") +
		"'s audit record and refuses those it cannot audit (--session-audit-failure-policy=fail-closed)")
}

// WatchEnded writes a watch's end record.
func (r *Auditor) WatchEnded(w Watch) {
	if r != nil {
		kind := w.kinds()[1]
		r.sendEvent(kind, w.event(kind), w.Watcher.Username)
	}
}

// kinds are the watch's start and end records' kinds.
func (w Watch) kinds() [2]string {
	if w.Join {
		return [2]string{recordJoinStart, recordJoinEnd}
	}
	return [2]string{recordWatchStart, recordWatchEnd}
}

func (w Watch) event(kind string) *auditinternal.Event {
	end := kind == w.kinds()[1]
	stage, at := auditinternal.StageResponseStarted, w.Start
	if end {
		stage, at = auditinternal.StageResponseComplete, w.End
	}
	a := map[string]string{
		AnnotationRecord: kind, AnnotationSessionID: w.ID, AnnotationWatchedSession: w.Session,
		AnnotationSessionUser: w.SessionUser, AnnotationStart: w.Start.UTC().Format(timeFormat),
	}
	if w.Container != "" {
		a[AnnotationContainer] = w.Container
	}
	if w.Moderator {
		a[AnnotationModerator] = "true"
	}
	if w.APIServerAuditID != "" {
		a[AnnotationAuditID] = w.APIServerAuditID
	}
	if end {
		a[AnnotationEnd] = w.End.UTC().Format(timeFormat)
		a[AnnotationDuration] = strconv.FormatFloat(w.End.Sub(w.Start).Seconds(), 'f', 3, 64)
		a[AnnotationReason] = w.Reason
		if w.Join {
			a[AnnotationBytesPrefix+"stdin"] = strconv.FormatInt(w.Typed, 10)
		}
	}
	verb := "get"
	if w.Join {
		verb = "create"
	}
	return &auditinternal.Event{
		Level: auditinternal.LevelMetadata, AuditID: types.UID(w.ID), Stage: stage, RequestURI: w.RequestURI,
		Verb: verb, User: w.Watcher, SourceIPs: w.SourceIPs, UserAgent: w.UserAgent,
		RequestReceivedTimestamp: metav1.NewMicroTime(w.Start), StageTimestamp: metav1.NewMicroTime(at),
		ObjectRef: &auditinternal.ObjectReference{Resource: "execsessions", Subresource: "attach", Namespace: w.Namespace,
			Name: w.Session, APIGroup: "execproxy.dev", APIVersion: "v1alpha1"},
		ResponseStatus: &metav1.Status{Code: http.StatusSwitchingProtocols},
		Annotations:    a,
	}
}
