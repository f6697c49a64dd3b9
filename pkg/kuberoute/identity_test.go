package kuberoute

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/filters/impersonation"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

// impersonationFilters are kube-apiserver's two impersonation filters: the constrained one, on by
// default from 1.36, and the one before it.
var impersonationFilters = map[string]func(http.Handler, authorizer.UnconditionalAuthorizer, runtime.NegotiatedSerializer) http.Handler{
	"constrained": impersonation.WithConstrainedImpersonation,
	"legacy":      impersonation.WithImpersonation,
}

// impersonatedAPIServer is a kube-apiserver reduced to its impersonation filter (upstream's, allowing
// every impersonation): it sends the user it acts for on got and answers 200.
func impersonatedAPIServer(t *testing.T, filter string, http2 bool, got chan<- user.Info) (*httptest.Server, http.RoundTripper) {
	t.Helper()
	codecs := serializer.NewCodecFactory(runtime.NewScheme())
	h := impersonationFilters[filter](http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		u, _ := apirequest.UserFrom(r.Context())
		got <- u
	}), authorizerfactory.NewAlwaysAllowAuthorizer(), codecs)
	exec := &user.DefaultInfo{Name: "system:serviceaccount:execproxy-system:exec-proxy", Groups: []string{user.AllAuthenticated}}
	srv := httptest.NewUnstartedServer(withRequestInfoOnly(asUser(exec, h)))
	srv.EnableHTTP2 = http2
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, srv.Client().Transport
}

func withRequestInfoOnly(h http.Handler) http.Handler {
	return genericapifilters.WithRequestInfo(h, testResolver)
}

// TestPassThroughIdentity: kube-apiserver acts for exactly the user exec-proxy authenticated, or
// exec-proxy passes nothing on. Header values lose their leading and trailing spaces on the way and
// Impersonate-Extra- keys their case: such a user would reach kube-apiserver as someone else.
func TestPassThroughIdentity(t *testing.T) {
	authn := user.AllAuthenticated
	cases := []struct {
		name   string
		u      *user.DefaultInfo
		passed bool
	}{
		{"plain", &user.DefaultInfo{Name: "alice", UID: "u-1", Groups: []string{"devs", authn}, Extra: map[string][]string{"example.com/team name": {"a", "b"}}}, true},
		{"a service account", &user.DefaultInfo{Name: "system:serviceaccount:ns:sa", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:ns", authn}}, true},
		{"UTF-8, inner spaces and tabs", &user.DefaultInfo{Name: "élise d'Arc\tx", Groups: []string{"équipe a", authn}, Extra: map[string][]string{"k%É": {"v, w; x"}}}, true},
		{"a name's trailing space", &user.DefaultInfo{Name: "admin ", Groups: []string{authn}}, false},
		{"a name's leading tab", &user.DefaultInfo{Name: "\tadmin", Groups: []string{authn}}, false},
		{"a group's trailing space", &user.DefaultInfo{Name: "mallory", Groups: []string{"system:masters ", authn}}, false},
		{"a UID's spaces", &user.DefaultInfo{Name: "mallory", UID: " u-1 ", Groups: []string{authn}}, false},
		{"an extra value's spaces", &user.DefaultInfo{Name: "mallory", Groups: []string{authn}, Extra: map[string][]string{"scopes": {" admin"}}}, false},
		{"an extra key's case", &user.DefaultInfo{Name: "mallory", Groups: []string{authn}, Extra: map[string][]string{"Scopes": {"a"}}}, false},
		{"a newline", &user.DefaultInfo{Name: "mallory\nImpersonate-Group: system:masters", Groups: []string{authn}}, false},
		{"no name", &user.DefaultInfo{Groups: []string{authn}}, false},
	}
	for _, server := range []struct {
		filter string
		h2     bool
	}{{"constrained", false}, {"constrained", true}, {"legacy", false}, {"legacy", true}} {
		h2 := server.h2
		got := make(chan user.Info, 1)
		srv, rt := impersonatedAPIServer(t, server.filter, h2, got)
		u, err := url.Parse(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		route := withRequestInfo(&Handler{PassThrough: NewPassThrough(u, rt)})
		for _, tc := range cases {
			rec := httptest.NewRecorder()
			asUser(tc.u, route).ServeHTTP(rec, httptest.NewRequest("GET", api.RoutePrefix+"/api/v1/namespaces", nil))
			var reached user.Info
			select {
			case reached = <-got:
			default:
			}
			switch {
			case tc.passed && (rec.Code != http.StatusOK || reached == nil):
				t.Errorf("%s, http2 %v, %s: got %d %s", server.filter, h2, tc.name, rec.Code, rec.Body)
			case reached != nil && !sameUser(reached, tc.u):
				t.Errorf("%s, http2 %v, %s: kube-apiserver acted for %#v, not %#v", server.filter, h2, tc.name, reached, tc.u)
			case !tc.passed && (reached != nil || rec.Code != http.StatusForbidden):
				t.Errorf("%s, http2 %v, %s: got %d %s, want 403 and nothing passed on", server.filter, h2, tc.name, rec.Code, rec.Body)
			}
		}
	}
}

func sameUser(a, b user.Info) bool {
	return a.GetName() == b.GetName() && a.GetUID() == b.GetUID() && reflect.DeepEqual(a.GetGroups(), b.GetGroups()) &&
		(len(a.GetExtra()) == 0 && len(b.GetExtra()) == 0 || reflect.DeepEqual(a.GetExtra(), b.GetExtra()))
}
