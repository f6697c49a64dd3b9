package apiserver

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/apiserver/plugin/pkg/audit/fake"
	"k8s.io/client-go/informers"
	clientfake "k8s.io/client-go/kubernetes/fake"
	restclient "k8s.io/client-go/rest"
	basecompatibility "k8s.io/component-base/compatibility"
	baseversion "k8s.io/component-base/version"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/kuberoute"
	podregistry "github.com/exec-proxy/exec-proxy/pkg/registry/pod"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// events keeps the session audit events written.
type events struct {
	fake.Backend
	mu  sync.Mutex
	got []*auditinternal.Event
}

func (b *events) ProcessEvents(ev ...*auditinternal.Event) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, ev...)
	return true
}

// reached is a session handler (what the proxier is in production) that notes each session it
// was asked to serve, with the audit attempt of its context, and answers 200.
type reached struct {
	mu       sync.Mutex
	requests []session.Request
	attempts []*sessionaudit.Attempt
}

func (s *reached) Handler(ctx context.Context, r session.Request) (http.Handler, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r)
	s.attempts = append(s.attempts, sessionaudit.AttemptFrom(ctx))
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }), nil
}

type onePod struct{}

func (onePod) Pod(namespace, name string) (*corev1.Pod, error) {
	return &corev1.Pod{}, nil
}

func (onePod) PodsMatching(string, labels.Selector) ([]*corev1.Pod, error) { return nil, nil }

// newChain builds exec-proxy's handler chain in process, as Complete and New do: the generic
// server's filters, the session audit's, the route, and the registry of the group, with every
// user allowed everything (authorization is not what this is about) and sessions served by s.
func newChain(t *testing.T, b *events, s *reached) http.Handler {
	t.Helper()
	return newChainWith(t, b, s, nil)
}

// newChainWith is newChain serving more resources of the group.
func newChainWith(t *testing.T, b *events, s *reached, more map[string]rest.Storage) http.Handler {
	t.Helper()
	g := genericapiserver.NewConfig(api.Codecs)
	g.EffectiveVersion = basecompatibility.NewEffectiveVersionFromString(baseversion.DefaultKubeBinaryVersion, "", "")
	g.FeatureGate = utilfeature.DefaultFeatureGate
	g.EnableIndex = false
	g.LoopbackClientConfig = &restclient.Config{Host: "https://127.0.0.1:1"}
	g.ExternalAddress = "127.0.0.1:443"
	g.Authentication.Authenticator = authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) {
		return &authenticator.Response{User: &user.DefaultInfo{Name: "alice", Groups: []string{user.AllAuthenticated}}}, true, nil
	})
	g.Authorization.Authorizer = authorizerfactory.NewAlwaysAllowAuthorizer()
	route := &kuberoute.Handler{Pods: onePod{}, Sessions: s}
	configureChain(g, sessionaudit.NewAuditor(b, sessionaudit.FailClosed), false, route.Wrap)
	server, err := g.Complete(informers.NewSharedInformerFactory(clientfake.NewClientset(), 0)).New("test", genericapiserver.NewEmptyDelegate())
	if err != nil {
		t.Fatal(err)
	}
	storage := podregistry.NewREST(s)
	maps.Copy(storage, more)
	if err := installAPIGroup(server, storage); err != nil {
		t.Fatal(err)
	}
	return server.Handler
}

// Every request the chain would serve as a session has exactly one audit record, opened for that
// very session; whatever the spelling of its path, method or query. Each variant is sent through
// the real chain (generic filters, route, registry); either no session handler is reached, or it
// is reached with the request's attempt and that attempt is its one record.
func TestEverySessionHasItsRecord(t *testing.T) {
	const (
		group = "/apis/execproxy.dev/v1alpha1"
		route = group + "/kube/api/v1"
	)
	// query is what a session of the kind a path names takes.
	query := func(path string) string {
		switch {
		case strings.Contains(path, "attach"):
			return "?stdout=true"
		case strings.Contains(path, "portforward"):
			return "?ports=80"
		}
		return "?command=sh&stdout=true"
	}
	type variant struct {
		method, path string
		session      bool // a session must be reached: the variants kubectl and curl use as written
	}
	var variants []variant
	for _, base := range []string{group, route} {
		for _, kind := range []string{"exec", "attach", "portforward"} {
			variants = append(variants, variant{"POST", base + "/namespaces/ns/pods/p/" + kind + query(kind), true},
				variant{"GET", base + "/namespaces/ns/pods/p/" + kind + query(kind), true})
		}
		for _, p := range []string{
			"/namespaces/ns/pods/p/exec/", "/namespaces/ns/pods/p/exec/anything", "/namespaces/ns/pods/p/exec/a/b/",
			"/namespaces/ns/pods/p/exec//", "//namespaces/ns/pods/p/exec", "/namespaces//ns/pods/p/exec",
			"/namespaces/ns//pods/p/exec", "/namespaces/ns/pods//p/exec", "/namespaces/ns/pods/p//exec",
			"/namespaces/ns/pods/p/%65xec", "/namespaces/ns/pods/p%2Fexec", "/namespaces/ns/pods/p/exec%2F",
			"/namespaces/ns/pods/p/exec%2Fx", "/namespaces/ns%2Fpods%2Fp/exec", "/namespaces/ns/pods/p/exec;x=y",
			"/namespaces/ns/pods/p;x=y/exec", "/namespaces/ns/pods/p/EXEC", "/namespaces/ns/pods/p/Exec",
			"/namespaces/ns/pods/p/x/../exec", "/namespaces/ns/pods/p/./exec", "/namespaces/ns/pods/p/exec/.",
			"/namespaces/ns/pods/p/exec/..", "/namespaces/ns/pods/../pods/p/exec", "/namespaces/ns/pods/p/exec%00",
			"/namespaces/ns/pods/p/exec%20", "/namespaces/ns/pods/p%20q/exec", "/namespaces/ns/pods/p.q-r_s/exec",
			"/namespaces/ns/pods/%2e%2e/exec", "/namespaces/ns/pods/p/exec?x=/exec&", "/namespaces/ns/pods/p/log/exec",
			"/namespaces/ns/pods/exec", "/namespaces/ns/exec", "/pods/p/exec", "/namespaces/ns/pods/p/exec#x",
			"/namespaces/ns/pods/p/portforward/", "/namespaces/ns/pods/p/attach/x", "/namespaces/ns/pods/p/attach%2F",
		} {
			for _, method := range []string{"GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "CONNECT"} {
				variants = append(variants, variant{method, base + p + query(p), false})
			}
		}
	}
	for _, prefix := range []string{group + "/kube//api/v1", group + "//kube/api/v1", group + "/kube/api//v1", group + "/kube/api/v1/", group + "/KUBE/api/v1", group + "/kube/%61pi/v1", "/apis/execproxy.dev//v1alpha1/kube/api/v1", "/apis//execproxy.dev/v1alpha1/kube/api/v1", "/api/v1"} {
		for _, method := range []string{"GET", "POST", "HEAD"} {
			variants = append(variants, variant{method, prefix + "/namespaces/ns/pods/p/exec" + query(""), false})
		}
	}
	b, s := &events{}, &reached{}
	chain := newChain(t, b, s)
	sessions := 0
	t.Cleanup(func() { t.Logf("%d variants, %d served as sessions", len(variants), sessions) })
	for _, v := range variants {
		t.Run(v.method+" "+v.path, func(t *testing.T) {
			b.got, s.requests, s.attempts = nil, nil, nil
			req := httptest.NewRequest(v.method, "https://exec-proxy"+v.path, nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "SPDY/3.1")
			w := httptest.NewRecorder()
			chain.ServeHTTP(w, req)
			if len(b.got) > 1 {
				t.Fatalf("%d records for one request", len(b.got))
			}
			if len(s.requests) == 0 {
				if v.session {
					t.Fatalf("no session reached (%d: %s)", w.Code, w.Body)
				}
				return
			}
			sessions++
			r, a := s.requests[0], s.attempts[0]
			if len(s.requests) > 1 || a == nil || len(b.got) != 1 {
				t.Fatalf("session %+v reached %d times, attempt %v, %d records", r, len(s.requests), a != nil, len(b.got))
			}
			ev, rec := b.got[0], a.Snapshot()
			if ref := ev.ObjectRef; string(ev.AuditID) != rec.SessionID ||
				ref.Subresource != string(r.Kind) || ref.Namespace != r.Namespace || ref.Name != r.Pod {
				t.Errorf("session %s %s/%s recorded as %s %s/%s (%s, attempt %s)", r.Kind, r.Namespace, r.Pod,
					ref.Subresource, ref.Namespace, ref.Name, ev.AuditID, rec.SessionID)
			}
			if got := w.Header().Get(sessionaudit.SessionIDHeader); got != rec.SessionID {
				t.Errorf("session id header %q, want %q", got, rec.SessionID)
			}
			if !strings.Contains(ev.RequestURI, "/namespaces/") {
				t.Errorf("request URI %q", ev.RequestURI)
			}
		})
	}
}
