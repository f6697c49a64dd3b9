package sessionaudit

import (
	"net/http/httptest"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
)

// TestCommandRecord: a command record is the session's (its id, user, pod, argv) with the line,
// and under fail-closed one the backend refuses is reported, for the session to end.
func TestCommandRecord(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	a := &Attempt{rec: Record{Requester: Requester{SessionID: "s1", User: authnv1.UserInfo{Username: "alice"}},
		Target: Target{Kind: "exec", Namespace: "ns", Pod: "p", Container: "c", Command: []string{"sh"}, TTY: true}}}
	cases := []struct {
		name    string
		c       TypedCommand
		policy  FailurePolicy
		ok      bool
		want    map[string]string
		written bool
	}{
		{"high", TypedCommand{Seq: 3, At: at, Line: "ls -l", Confidence: "high"}, FailClosed, true,
			map[string]string{AnnotationRecord: "command", AnnotationSessionID: "s1", AnnotationSequence: "3", AnnotationCommandLine: "ls -l",
				AnnotationConfidence: "high", AnnotationTime: "2026-12-06T10:00:00Z", AnnotationContainer: "c", AnnotationCommand: `["sh"]`}, true},
		{"withheld", TypedCommand{Seq: 4, At: at, Confidence: "low", Why: "echo off"}, FailClosed, true,
			map[string]string{AnnotationCommandLine: "", AnnotationConfidenceReason: "echo off"}, true},
		{"lost, fail-closed", TypedCommand{Seq: 5, At: at, Line: "x"}, FailClosed, false, nil, false},
		{"lost, fail-open", TypedCommand{Seq: 5, At: at, Line: "x"}, FailOpen, false, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &backend{ok: tc.ok}
			if written := NewAuditor(b, tc.policy).Command(a, tc.c); written != tc.written {
				t.Fatalf("Command = %v, want %v", written, tc.written)
			}
			if !tc.ok {
				return
			}
			ev := b.events[0]
			if ev.AuditID != "s1" || ev.User.Username != "alice" || ev.ObjectRef.Name != "p" || !ev.StageTimestamp.Time.Equal(at) {
				t.Errorf("event: %+v", ev)
			}
			for k, v := range tc.want {
				if got, ok := ev.Annotations[k]; !ok && v != "" || got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestWatchRecords: a watch's records name the watcher as the event's user and the session
// watched; a start record the backend refuses refuses the watch under fail-closed.
func TestWatchRecords(t *testing.T) {
	req := httptest.NewRequest("GET", "/apis/execproxy.dev/v1alpha1/namespaces/ns/execsessions/s1/attach?stdout=true&tty=true", nil)
	w := NewWatch(req, authnv1.UserInfo{Username: "sec"})
	w.Session, w.SessionUser, w.Namespace, w.Pod = "s1", "alice", "ns", "p"
	b := &backend{ok: true}
	r := NewAuditor(b, FailClosed)
	if err := r.WatchStarted(w); err != nil {
		t.Fatal(err)
	}
	w.End, w.Reason = w.Start.Add(90*time.Second), "the session ended"
	r.WatchEnded(w)
	if len(b.events) != 2 {
		t.Fatalf("%d events", len(b.events))
	}
	for i, want := range []struct {
		record string
		stage  auditinternal.Stage
	}{{"watch-start", auditinternal.StageResponseStarted}, {"watch-end", auditinternal.StageResponseComplete}} {
		ev := b.events[i]
		if ev.Annotations[AnnotationRecord] != want.record || ev.Stage != want.stage || ev.User.Username != "sec" ||
			ev.Annotations[AnnotationWatchedSession] != "s1" || ev.Annotations[AnnotationSessionUser] != "alice" ||
			ev.ObjectRef.Resource != "execsessions" || ev.ObjectRef.Subresource != "attach" || ev.AuditID != b.events[0].AuditID {
			t.Errorf("record %d: %+v", i, ev)
		}
	}
	if end := b.events[1].Annotations; end[AnnotationDuration] != "90.000" || end[AnnotationReason] != "the session ended" {
		t.Errorf("end record: %v", end)
	}
	if err := NewAuditor(&backend{ok: false}, FailClosed).WatchStarted(w); !apierrors.IsServiceUnavailable(err) {
		t.Errorf("fail-closed, start not written: %v, want a 503", err)
	}
}
