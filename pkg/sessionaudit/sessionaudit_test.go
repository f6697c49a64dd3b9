package sessionaudit

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/plugin/pkg/audit/fake"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/exec-proxy/exec-proxy/pkg/session"
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

// testResolver parses requests as the generic server's chain does (the route's prefix aside, which
// pkg/apiserver's tests cover).
var testResolver = &apirequest.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}

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
		{"refused in the chain", "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p/exec?command=ls&container=c", forbidden, []string{"refused"}, 403, "forbidden"},
		{"a trailing slash", "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p/exec/?command=ls", forbidden, []string{"refused"}, 403, "forbidden"},
		{"a path after the subresource", "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p/exec/anything?command=ls", forbidden, []string{"refused"}, 403, "forbidden"},
		{"refused on the group path", "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p/portforward?ports=80", forbidden, []string{"refused"}, 403, "forbidden"},
		{"unauthenticated", "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p/attach", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
		}, []string{"refused"}, 401, "unauthenticated"},
		{"session already recorded", "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p/exec?command=ls", func(w http.ResponseWriter, req *http.Request) {
			AttemptFrom(req.Context()).markRecorded()
		}, nil, 0, ""},
		{"not a session request", "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p", forbidden, nil, 0, ""},
		{"another subresource", "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p/log", forbidden, nil, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &backend{ok: true}
			rec := httptest.NewRecorder()
			WithAttempts(tc.handler, NewAuditor(b, FailClosed), testResolver).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, tc.path, nil))
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
			r := NewAuditor(b, FailClosed)
			var a *Attempt
			handler := func(_ http.ResponseWriter, req *http.Request) {
				a = AttemptFrom(req.Context())
				a.Update(func(rec *Record) { rec.Code = 502 })
				a.Detach()
			}
			WithAttempts(http.HandlerFunc(handler), r, testResolver).ServeHTTP(httptest.NewRecorder(),
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
		a := &Attempt{rec: Record{Requester: Requester{SessionID: "s"}, Target: Target{Kind: "exec"}}}
		err := NewAuditor(&backend{ok: tc.ok}, tc.policy).Started(a)
		if refused := err != nil; refused != tc.refused || (refused && !apierrors.IsServiceUnavailable(err)) {
			t.Errorf("%s, backend ok %v: got %v", tc.policy, tc.ok, err)
		}
	}
}

func TestEndIsWrittenOnce(t *testing.T) {
	b := &backend{ok: true}
	r := NewAuditor(b, FailClosed)
	a := &Attempt{rec: Record{Requester: Requester{SessionID: "s"}, Target: Target{Kind: "exec"}, Outcome: Outcome{ExitCode: "0"}}}
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
		{"own identity", Record{Requester: Requester{User: alice}}, "alice", "none"},
		{"impersonated, as kube-apiserver's audit has it", Record{Requester: Requester{User: alice, Impersonator: &admin}}, "admin", "alice"},
		// kube-apiserver logs no impersonated user when it refused the impersonation.
		{"impersonation refused", Record{Requester: Requester{Impersonator: &admin}}, "admin", "none"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := event(recordRefused, tc.rec)
			impersonated := "none"
			if ev.ImpersonatedUser != nil {
				impersonated = ev.ImpersonatedUser.Username
			}
			if ev.User.Username != tc.user || impersonated != tc.impersonated {
				t.Errorf("user %q impersonated %q, want %q %q", ev.User.Username, impersonated, tc.user, tc.impersonated)
			}
		})
	}
}

// With auditing on, a session is served only with the attempt opened for it: none, or one of
// another session, is a 500 before anything else happens. Without auditing nothing is required.
func TestAuditorAttempt(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "/x", nil)
	cases := []struct {
		name    string
		auditor *Auditor
		attempt *Attempt
		refused bool
	}{
		{"the request's own attempt", NewAuditor(&backend{ok: true}, FailClosed), NewAttempt(req, "exec", "ns", "p"), false},
		{"no attempt", NewAuditor(&backend{ok: true}, FailClosed), nil, true},
		{"no attempt, fail-open", NewAuditor(&backend{ok: true}, FailOpen), nil, true},
		{"another kind", NewAuditor(&backend{ok: true}, FailClosed), NewAttempt(req, "attach", "ns", "p"), true},
		{"another pod", NewAuditor(&backend{ok: true}, FailClosed), NewAttempt(req, "exec", "ns", "q"), true},
		{"another namespace", NewAuditor(&backend{ok: true}, FailClosed), NewAttempt(req, "exec", "other", "p"), true},
		{"auditing off", nil, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := req.Context()
			if tc.attempt != nil {
				ctx = WithAttempt(ctx, tc.attempt)
			}
			a, err := tc.auditor.Attempt(ctx, "exec", "ns", "p")
			switch {
			case tc.refused && (!apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "audit attempt is missing") || a != nil):
				t.Errorf("got %v %v, want a 500 saying the audit attempt is missing", a, err)
			case !tc.refused && (err != nil || a != tc.attempt):
				t.Errorf("got %v %v, want the attempt", a, err)
			}
		})
	}
}

// The chain's resolver answers with the filter's RequestInfo: what is served is what was audited.
func TestResolved(t *testing.T) {
	var got, filters *apirequest.RequestInfo
	chain := http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		got, _ = Resolved{Delegate: testResolver}.NewRequestInfo(req)
		filters, _ = apirequest.RequestInfoFrom(req.Context())
	})
	WithAttempts(chain, NewAuditor(&backend{ok: true}, FailClosed), testResolver).ServeHTTP(httptest.NewRecorder(),
		httptest.NewRequest(http.MethodPost, "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p/exec", nil))
	if got == nil || got != filters || got.Subresource != "exec" || got.Name != "p" {
		t.Fatalf("resolved %+v, the filter's %+v", got, filters)
	}
	probe := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/ns/pods/q", nil)
	if info, err := (Resolved{Delegate: testResolver}).NewRequestInfo(probe); err != nil || info.Name != "q" {
		t.Errorf("without the filter: %+v %v", info, err)
	}
}

// kubectl's Kubectl-Command and Kubectl-Session headers (KEP-859) are in the session's records:
// "kubectl cp" shows as cp. Bounded, and printable only, since the client writes them.
func TestKubectlHeaders(t *testing.T) {
	long := strings.Repeat("x", 300)
	cases := []struct {
		name, command, session   string
		wantCommand, wantSession string
		present                  bool
	}{
		{"kubectl cp", "kubectl cp", "8d5f4c1e-2a6b-4f1e-9c1d-0e4f5a6b7c8d", "kubectl cp", "8d5f4c1e-2a6b-4f1e-9c1d-0e4f5a6b7c8d", true},
		{"kubectl exec", "kubectl exec", "s", "kubectl exec", "s", true},
		{"absent", "", "", "", "", false},
		{"control characters", "kubectl cp\x1b[2J\tmore\xff", "a\x00b", "kubectl cp?[2J?more?", "a?b", true},
		{"too long", long, long, long[:maxKubectlHeader], long[:maxKubectlHeader], true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &backend{ok: true}
			r := NewAuditor(b, FailClosed)
			handler := func(_ http.ResponseWriter, req *http.Request) {
				a := AttemptFrom(req.Context())
				if err := r.Started(a); err != nil {
					t.Fatal(err)
				}
				r.Ended(a)
			}
			req := httptest.NewRequest(http.MethodPost, "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p/exec?command=tar", nil)
			if tc.command != "" {
				req.Header["Kubectl-Command"] = []string{tc.command}
				req.Header["Kubectl-Session"] = []string{tc.session}
			}
			WithAttempts(http.HandlerFunc(handler), r, testResolver).ServeHTTP(httptest.NewRecorder(), req)
			if len(b.events) != 2 {
				t.Fatalf("%d events", len(b.events))
			}
			for _, ev := range b.events {
				command, hasCommand := ev.Annotations[AnnotationKubectlCommand]
				session, hasSession := ev.Annotations[AnnotationKubectlSession]
				if command != tc.wantCommand || session != tc.wantSession || hasCommand != tc.present || hasSession != tc.present {
					t.Errorf("%s record: command %q session %q, want %q %q", ev.Annotations[AnnotationRecord], command, session, tc.wantCommand, tc.wantSession)
				}
			}
		})
	}
}

// The session policy rule a session fell under and the reason its user gave are in each of its
// records, the refusal too (a rule may be what refused it); a session without them has neither.
func TestPolicyAnnotations(t *testing.T) {
	cases := []struct {
		name                string
		rule, justification string
	}{
		{"both", "prod-ticket", "INC-42: disk full"},
		{"a rule, no reason", "read-only", ""},
		{"a reason, no rule", "", "INC-7"},
		{"neither", "", ""},
	}
	for _, tc := range cases {
		for _, kind := range []string{recordStart, recordEnd, recordRefused} {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				rec := Record{Requester: Requester{SessionID: "s", Justification: tc.justification}, Target: Target{Kind: "exec"},
					Rules: Rules{PolicyRule: tc.rule}, Outcome: Outcome{Code: 403}}
				a := event(kind, rec).Annotations
				for k, want := range map[string]string{AnnotationPolicyRule: tc.rule, AnnotationJustification: tc.justification} {
					if got, ok := a[k]; got != want || ok != (want != "") {
						t.Errorf("%s: %q (present %t), want %q", k, got, ok, want)
					}
				}
			})
		}
	}
}

func TestEphemeralContainerRecord(t *testing.T) {
	c := &corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: "debugger-x", Image: "busybox", Command: []string{"sh"}, Args: []string{"-c", "id"}, TTY: true, Stdin: true}}
	cases := []struct {
		name    string
		code    int32
		message string
	}{
		{"asked for", 0, ""},
		{"refused by kube-apiserver", 403, "denied by policy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &backend{ok: true}
			req := httptest.NewRequest("PATCH", "/apis/execproxy.dev/v1alpha1/kube/api/v1/namespaces/ns/pods/p/ephemeralcontainers", nil)
			if err := NewAuditor(b, FailClosed).EphemeralContainer(req, authnv1.UserInfo{Username: "alice"}, "ns", "p", c, tc.code, tc.message); err != nil {
				t.Fatal(err)
			}
			if len(b.events) != 1 {
				t.Fatalf("got %d events", len(b.events))
			}
			ev := b.events[0]
			want := map[string]string{AnnotationRecord: "ephemeral-container", AnnotationKind: "ephemeralcontainers", AnnotationContainer: "debugger-x",
				AnnotationImage: "busybox", AnnotationCommand: `["sh","-c","id"]`, AnnotationTTY: "true", AnnotationStdin: "true"}
			for k, v := range want {
				if ev.Annotations[k] != v {
					t.Errorf("%s: got %q, want %q", k, ev.Annotations[k], v)
				}
			}
			if ev.Verb != "patch" || ev.User.Username != "alice" || ev.ObjectRef.Subresource != "ephemeralcontainers" || ev.ObjectRef.Name != "p" ||
				(tc.code == 0) != (ev.ResponseStatus == nil) || tc.code != 0 && (ev.ResponseStatus.Code != tc.code || ev.ResponseStatus.Message != tc.message) {
				t.Errorf("got verb %s, user %s, object %+v, status %+v", ev.Verb, ev.User.Username, ev.ObjectRef, ev.ResponseStatus)
			}
		})
	}
}

// TestEphemeralContainerRecordFailClosed: under fail-closed, an ephemeral container whose record
// cannot be written is refused (its command would run unrecorded); under fail-open it goes on.
func TestEphemeralContainerRecordFailClosed(t *testing.T) {
	c := &corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger-x"}}
	req := httptest.NewRequest("PATCH", "/apis/execproxy.dev/v1alpha1/kube/api/v1/namespaces/ns/pods/p/ephemeralcontainers", nil)
	err := NewAuditor(&backend{ok: false}, FailClosed).EphemeralContainer(req, authnv1.UserInfo{Username: "alice"}, "ns", "p", c, 0, "")
	if !apierrors.IsServiceUnavailable(err) {
		t.Errorf("fail-closed with the backend down: %v, want a 503", err)
	}
	if err := NewAuditor(&backend{ok: false}, FailOpen).EphemeralContainer(req, authnv1.UserInfo{Username: "alice"}, "ns", "p", c, 0, ""); err != nil {
		t.Errorf("fail-open with the backend down: %v", err)
	}
}

// TestTargetAsked: a session a mutating webhook changed is recorded as it runs, nothing of the
// query's left over.
func TestTargetAsked(t *testing.T) {
	query := Target{Container: "c", Command: []string{"ls"}, TTY: true, Stdin: true, Ports: []int32{1}}
	cases := []struct {
		name string
		r    session.Request
		want Target
	}{
		{"exec", session.Request{Kind: session.KindExec, Exec: &corev1.PodExecOptions{Container: "d", Command: []string{"id"}}},
			Target{Container: "d", Command: []string{"id"}}},
		{"attach", session.Request{Kind: session.KindAttach, Attach: &corev1.PodAttachOptions{Container: "d", Stdin: true}},
			Target{Container: "d", Stdin: true}},
		{"port-forward", session.Request{Kind: session.KindPortForward, PortForward: &corev1.PodPortForwardOptions{Ports: []int32{80}}},
			Target{Ports: []int32{80}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := query
			got.Asked(tc.r)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
