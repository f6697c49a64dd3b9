package sessionaudit

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/apiserver/plugin/pkg/audit/fake"
	"k8s.io/client-go/kubernetes/scheme"
)

// backend collects events; ok says whether it accepts them.
type backend struct {
	fake.Backend
	ok     bool
	events []*auditinternal.Event
}

func (b *backend) ProcessEvents(ev ...*auditinternal.Event) bool {
	if b.ok {
		b.events = append(b.events, ev...)
	}
	return b.ok
}

func TestWithAttempts(t *testing.T) {
	forbidden := func(w http.ResponseWriter, req *http.Request) {
		AttemptFrom(req.Context()).Update(func(r *Record) { r.User = authnv1.UserInfo{Username: "viewer"} })
		responsewriters.ErrorNegotiated(apierrors.NewForbidden(schema.GroupResource{Resource: "pods/exec"}, "p", nil),
			scheme.Codecs, schema.GroupVersion{Version: "v1"}, w, req)
	}
	cases := []struct {
		name    string
		path    string
		handler http.HandlerFunc
		records []string // record annotation of each event
		code    int32
		reason  string
	}{
		{"refused in the chain", "/apis/execproxy.dev/v1alpha1/kube/api/v1/namespaces/ns/pods/p/exec?command=ls&container=c", forbidden, []string{"refused"}, 403, "forbidden"},
		{"refused on the group path", "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p/portforward?ports=80", forbidden, []string{"refused"}, 403, "forbidden"},
		{"unauthenticated", "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p/attach", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
		}, []string{"refused"}, 401, "unauthenticated"},
		{"session already recorded", "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p/exec?command=ls", func(w http.ResponseWriter, req *http.Request) {
			AttemptFrom(req.Context()).markRecorded()
		}, nil, 0, ""},
		{"not a session request", "/apis/execproxy.dev/v1alpha1/kube/api/v1/namespaces/ns/pods/p", forbidden, nil, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &backend{ok: true}
			rec := httptest.NewRecorder()
			WithAttempts(tc.handler, NewRecorder(b, FailClosed)).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, tc.path, nil))
			if len(b.events) != len(tc.records) {
				t.Fatalf("%d events, want %d", len(b.events), len(tc.records))
			}
			if len(tc.records) == 0 {
				return
			}
			ev := b.events[0]
			if ev.Annotations[AnnotationRecord] != "refused" || ev.ResponseStatus.Code != tc.code || ev.Annotations[AnnotationReason] != tc.reason ||
				ev.ObjectRef.Namespace != "ns" || ev.ObjectRef.Name != "p" || string(ev.AuditID) != rec.Header().Get(SessionIDHeader) {
				t.Errorf("event %+v, header %q", ev, rec.Header().Get(SessionIDHeader))
			}
			if tc.code == 403 && (ev.User.Username != "viewer" || !strings.Contains(ev.ResponseStatus.Message, "forbidden")) {
				t.Errorf("refusal of %q: %q", ev.User.Username, ev.ResponseStatus.Message)
			}
		})
	}
}

// A detached session writes its own last record: the filter writes none when the handler returns,
// FinishDetached writes the refusal of one that never started, and nothing after an end record.
func TestDetachedAttempts(t *testing.T) {
	cases := []struct {
		name    string
		ended   bool
		records []string
	}{
		{"refused after its connection was taken", false, []string{"refused"}},
		{"ended", true, []string{"end"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &backend{ok: true}
			r := NewRecorder(b, FailClosed)
			var a *Attempt
			handler := func(_ http.ResponseWriter, req *http.Request) {
				a = AttemptFrom(req.Context())
				a.Update(func(rec *Record) { rec.Code = 502 })
				a.Detach()
			}
			WithAttempts(http.HandlerFunc(handler), r).ServeHTTP(httptest.NewRecorder(),
				httptest.NewRequest(http.MethodPost, "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p/exec?command=ls", nil))
			if len(b.events) != 0 || !a.Detached() {
				t.Fatalf("the filter wrote %d records for a detached attempt", len(b.events))
			}
			if tc.ended {
				r.Ended(a)
			}
			FinishDetached(r, a)
			FinishDetached(r, a)
			var got []string
			for _, ev := range b.events {
				got = append(got, ev.Annotations[AnnotationRecord])
			}
			if strings.Join(got, ",") != strings.Join(tc.records, ",") {
				t.Errorf("records %v, want %v", got, tc.records)
			}
			if !tc.ended && b.events[0].ResponseStatus.Code != 502 {
				t.Errorf("refusal code %d, want the session's 502", b.events[0].ResponseStatus.Code)
			}
		})
	}
}

func TestFailurePolicy(t *testing.T) {
	cases := []struct {
		policy  FailurePolicy
		ok      bool
		refused bool
	}{
		{FailClosed, true, false},
		{FailClosed, false, true},
		{FailOpen, false, false},
	}
	for _, tc := range cases {
		a := &Attempt{rec: Record{SessionID: "s", Kind: "exec"}}
		err := NewRecorder(&backend{ok: tc.ok}, tc.policy).Started(a)
		if refused := err != nil; refused != tc.refused || (refused && !apierrors.IsServiceUnavailable(err)) {
			t.Errorf("%s, backend ok %v: got %v", tc.policy, tc.ok, err)
		}
	}
}

func TestEndIsWrittenOnce(t *testing.T) {
	b := &backend{ok: true}
	r := NewRecorder(b, FailClosed)
	a := &Attempt{rec: Record{SessionID: "s", Kind: "exec", ExitCode: "0"}}
	r.Ended(a)
	r.Refused(a) // the filter's catch-all after a session ended
	r.Ended(a)
	if len(b.events) != 1 || b.events[0].Annotations[AnnotationRecord] != "end" || b.events[0].Stage != auditinternal.StageResponseComplete {
		t.Errorf("events: %+v", b.events)
	}
}

func TestEventUsers(t *testing.T) {
	alice, admin := authnv1.UserInfo{Username: "alice"}, authnv1.UserInfo{Username: "admin"}
	cases := []struct {
		name               string
		rec                Record
		user, impersonated string
	}{
		{"own identity", Record{User: alice}, "alice", ""},
		{"impersonated, as kube-apiserver's audit has it", Record{User: alice, Impersonator: &admin}, "admin", "alice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := event(recordStart, tc.rec)
			impersonated := ""
			if ev.ImpersonatedUser != nil {
				impersonated = ev.ImpersonatedUser.Username
			}
			if ev.User.Username != tc.user || impersonated != tc.impersonated {
				t.Errorf("user %q impersonated %q, want %q %q", ev.User.Username, impersonated, tc.user, tc.impersonated)
			}
		})
	}
}
