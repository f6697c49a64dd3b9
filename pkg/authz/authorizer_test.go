package authz

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/filters/impersonation"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// recorder is the delegated (SubjectAccessReview) authorizer: it records what it was asked.
type recorder struct{ got authorizer.Attributes }

func (r *recorder) Authorize(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	r.got = a
	return authorizer.DecisionAllow, "", nil
}

func TestCoreRBAC(t *testing.T) {
	alice := &user.DefaultInfo{Name: "alice"}
	cases := []struct {
		name                     string
		in                       authorizer.AttributesRecord
		verb, group, subresource string
	}{
		{"WebSocket GET of exec needs create", authorizer.AttributesRecord{Verb: "get", APIGroup: "execproxy.dev", Resource: "pods", Subresource: "exec", ResourceRequest: true}, "create", "", "exec"},
		{"SPDY POST of exec needs create", authorizer.AttributesRecord{Verb: "create", APIGroup: "execproxy.dev", Resource: "pods", Subresource: "exec", ResourceRequest: true}, "create", "", "exec"},
		{"attach over GET", authorizer.AttributesRecord{Verb: "get", APIGroup: "execproxy.dev", Resource: "pods", Subresource: "attach", ResourceRequest: true}, "create", "", "attach"},
		{"port-forward over GET", authorizer.AttributesRecord{Verb: "get", APIGroup: "", Resource: "pods", Subresource: "portforward", ResourceRequest: true}, "create", "", "portforward"},
		{"reading a pod stays get", authorizer.AttributesRecord{Verb: "get", APIGroup: "", Resource: "pods", ResourceRequest: true}, "get", "", ""},
		{"logs is not a session", authorizer.AttributesRecord{Verb: "get", APIGroup: "", Resource: "pods", Subresource: "log", ResourceRequest: true}, "get", "", "log"},
		{"other groups untouched", authorizer.AttributesRecord{Verb: "get", APIGroup: "example.com", Resource: "pods", Subresource: "exec", ResourceRequest: true}, "get", "example.com", "exec"},
		{"non-resource untouched", authorizer.AttributesRecord{Verb: "get", Path: "/api"}, "get", "", ""},
		{"an impersonator's WebSocket exec needs impersonate-on create", authorizer.AttributesRecord{Verb: "impersonate-on:user-info:get", Resource: "pods", Subresource: "exec", ResourceRequest: true}, "impersonate-on:user-info:create", "", "exec"},
		{"an impersonator's SPDY port-forward", authorizer.AttributesRecord{Verb: "impersonate-on:serviceaccount:create", Resource: "pods", Subresource: "portforward", ResourceRequest: true}, "impersonate-on:serviceaccount:create", "", "portforward"},
		{"an impersonator reading a pod", authorizer.AttributesRecord{Verb: "impersonate-on:user-info:get", Resource: "pods", ResourceRequest: true}, "impersonate-on:user-info:get", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.User, tc.in.Namespace, tc.in.Name = alice, "ns", "p"
			rec := &recorder{}
			if _, _, err := (CoreRBAC{Delegate: rec}).Authorize(context.Background(), tc.in); err != nil {
				t.Fatal(err)
			}
			got := rec.got
			if got.GetVerb() != tc.verb || got.GetAPIGroup() != tc.group || got.GetSubresource() != tc.subresource ||
				got.GetUser().GetName() != "alice" || got.GetNamespace() != "ns" || got.GetName() != "p" {
				t.Errorf("delegate asked %s %q %s/%s %s/%s for %s, want %s %q .../%s", got.GetVerb(), got.GetAPIGroup(),
					got.GetResource(), got.GetSubresource(), got.GetNamespace(), got.GetName(), got.GetUser().GetName(), tc.verb, tc.group, tc.subresource)
			}
		})
	}
}

// The attempt's record names the user the session runs as and, when they impersonated, who they are.
func TestAttemptUser(t *testing.T) {
	admin, alice := &user.DefaultInfo{Name: "admin", Groups: []string{"ops"}}, &user.DefaultInfo{Name: "alice"}
	exec := authorizer.AttributesRecord{Verb: "create", Resource: "pods", Subresource: "exec", ResourceRequest: true}
	cases := []struct {
		name         string
		asked        []authorizer.AttributesRecord // in the order the handler chain asks
		user         string
		impersonator string
	}{
		{"own identity", []authorizer.AttributesRecord{withUser(exec, alice)}, "alice", ""},
		{"impersonating", []authorizer.AttributesRecord{
			withUser(authorizer.AttributesRecord{Verb: "impersonate", Resource: "users", Name: "alice", ResourceRequest: true}, admin),
			withUser(authorizer.AttributesRecord{Verb: "impersonate", Resource: "groups", Name: "devs", ResourceRequest: true}, admin),
			withUser(exec, alice),
		}, "alice", "admin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &sessionaudit.Attempt{}
			ctx := sessionaudit.WithAttempt(context.Background(), a)
			for _, attrs := range tc.asked {
				if _, _, err := (CoreRBAC{Delegate: &recorder{}}).Authorize(ctx, attrs); err != nil {
					t.Fatal(err)
				}
			}
			rec := a.Snapshot()
			impersonator := ""
			if rec.Impersonator != nil {
				impersonator = rec.Impersonator.Username
			}
			if rec.User.Username != tc.user || impersonator != tc.impersonator {
				t.Errorf("user %q impersonator %q, want %q %q", rec.User.Username, impersonator, tc.user, tc.impersonator)
			}
		})
	}
}

func withUser(a authorizer.AttributesRecord, u user.Info) authorizer.AttributesRecord {
	a.User = u
	return a
}

// TestAttemptUserThroughImpersonation: through kube-apiserver's own filters, as exec-proxy's handler
// chain runs them, a session opened as another user is recorded with both identities, each time,
// the impersonator as they authenticated. Constrained impersonation (on by default from 1.36) asks
// verbs of its own, rewrites the impersonator's extra in its associated-node mode, and asks nothing
// when it allowed the same impersonation before: the second request is served from its cache.
func TestAttemptUserThroughImpersonation(t *testing.T) {
	filters := map[string]func(http.Handler, authorizer.UnconditionalAuthorizer, runtime.NegotiatedSerializer) http.Handler{
		"constrained": impersonation.WithConstrainedImpersonation,
		"legacy":      impersonation.WithImpersonation,
	}
	admin := &user.DefaultInfo{Name: "admin", Groups: []string{"ops", user.AllAuthenticated}}
	agent := &user.DefaultInfo{Name: "system:serviceaccount:ns:agent", Groups: []string{"system:serviceaccounts", user.AllAuthenticated},
		Extra: map[string][]string{"authentication.kubernetes.io/node-name": {"n1"}, "authentication.kubernetes.io/pod-name": {"agent-x"}}}
	cases := []struct {
		name       string
		filter     string
		as         *user.DefaultInfo // who authenticates
		header     map[string]string
		allowed    bool // the impersonation
		wantUser   string
		impersonat *user.DefaultInfo // the impersonator the record names, nil: none
	}{
		{"constrained", "constrained", admin, map[string]string{"Impersonate-User": "alice"}, true, "alice", admin},
		{"legacy", "legacy", admin, map[string]string{"Impersonate-User": "alice"}, true, "alice", admin},
		{"own identity", "constrained", admin, nil, true, "admin", nil},
		{"a service account as its own node", "constrained", agent, map[string]string{"Impersonate-User": "system:node:n1"}, true, "system:node:n1", agent},
		{"refused", "constrained", admin, map[string]string{"Impersonate-User": "alice"}, false, "", admin},
		{"refused, legacy", "legacy", admin, map[string]string{"Impersonate-User": "alice"}, false, "", admin},
	}
	codecs := serializer.NewCodecFactory(runtime.NewScheme())
	resolver := &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			authn := Authenticated{Delegate: authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) {
				return &authenticator.Response{User: tc.as}, true, nil
			})}
			rbac := CoreRBAC{Delegate: authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
				if isImpersonationCheck(a.GetVerb()) && !tc.allowed {
					return authorizer.DecisionNoOpinion, "", nil
				}
				return authorizer.DecisionAllow, "", nil
			})}
			var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
			h = genericapifilters.WithAuthorization(h, rbac, codecs)
			h = filters[tc.filter](h, rbac, codecs)
			h = genericapifilters.WithAuthentication(h, authn, http.NotFoundHandler(), nil, nil)
			h = genericapifilters.WithRequestInfo(h, resolver)
			for i := range 2 { // the second from constrained impersonation's cache
				a := &sessionaudit.Attempt{}
				req := httptest.NewRequest("POST", "/api/v1/namespaces/ns/pods/p/exec?command=id", nil)
				for k, v := range tc.header {
					req.Header.Set(k, v)
				}
				rr := httptest.NewRecorder()
				h.ServeHTTP(rr, req.WithContext(sessionaudit.WithAttempt(req.Context(), a)))
				if want := map[bool]int{true: http.StatusTeapot, false: http.StatusForbidden}[tc.allowed]; rr.Code != want {
					t.Fatalf("request %d: got %d %s, want %d", i, rr.Code, rr.Body, want)
				}
				rec := a.Snapshot()
				var want *authnv1.UserInfo
				if tc.impersonat != nil {
					info := UserInfo(tc.impersonat)
					want = &info
				}
				if rec.User.Username != tc.wantUser || !reflect.DeepEqual(rec.Impersonator, want) {
					t.Errorf("request %d: recorded user %q impersonator %+v, want %q and %+v", i, rec.User.Username, rec.Impersonator, tc.wantUser, want)
				}
			}
		})
	}
}
