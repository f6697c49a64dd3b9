package sessionaudit

import (
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
)

// A join's records say it was a join, with the create verb and the bytes the joiner typed; a
// watch's say get, and nothing of stdin.
func TestJoinRecords(t *testing.T) {
	start := time.Unix(1000, 0)
	cases := []struct {
		name        string
		w           Watch
		start, end  string
		verb, typed string // typed: "" when the end record has no bytes-stdin
	}{
		{"watch", Watch{Session: "s"}, recordWatchStart, recordWatchEnd, "get", ""},
		{"join", Watch{Session: "s", Join: true, Typed: 42}, recordJoinStart, recordJoinEnd, "create", "42"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.w
			w.Watcher, w.Start, w.End, w.Reason = authnv1.UserInfo{Username: "alice"}, start, start.Add(time.Second), "left"
			kinds := w.kinds()
			if kinds[0] != tc.start || kinds[1] != tc.end {
				t.Fatalf("kinds %v, want %s and %s", kinds, tc.start, tc.end)
			}
			s, e := w.event(kinds[0]), w.event(kinds[1])
			if s.Annotations[AnnotationRecord] != tc.start || e.Annotations[AnnotationRecord] != tc.end {
				t.Errorf("records %q, %q; want %q, %q", s.Annotations[AnnotationRecord], e.Annotations[AnnotationRecord], tc.start, tc.end)
			}
			if s.Verb != tc.verb || e.Verb != tc.verb {
				t.Errorf("verbs %q, %q; want %q", s.Verb, e.Verb, tc.verb)
			}
			if _, ok := s.Annotations[AnnotationEnd]; ok {
				t.Error("the start record has an end")
			}
			if e.Annotations[AnnotationReason] != "left" || e.Annotations[AnnotationDuration] != "1.000" {
				t.Errorf("end record: reason %q, duration %q", e.Annotations[AnnotationReason], e.Annotations[AnnotationDuration])
			}
			if got := e.Annotations[AnnotationBytesPrefix+"stdin"]; got != tc.typed {
				t.Errorf("bytes-stdin %q, want %q", got, tc.typed)
			}
		})
	}
}
