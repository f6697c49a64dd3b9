package kuberoute

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/filters/impersonation"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/authz"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// outcome records what the route did with one request: whether it reached anything exec-proxy serves
// itself (sessions, pods and objects read, ephemeral containers) or the pass-through, and what the
// authorizer decided without asking the user's RBAC.
type outcome struct {
	itself, passed bool
	asked          []authorizer.Attributes // what went to the user's RBAC
	left           []authorizer.Attributes // what PassedThrough left to kube-apiserver
}

var errTouched = errors.New("served by exec-proxy itself")

type touchPods struct{ s *outcome }

func (f touchPods) Pod(string, string) (*corev1.Pod, error) {
	f.s.itself = true
	return nil, errTouched
}
func (f touchPods) PodsMatching(string, labels.Selector) ([]*corev1.Pod, error) {
	f.s.itself = true
	return nil, errTouched
}

type touchObjects struct{ s *outcome }

func (f touchObjects) Get(context.Context, schema.GroupResource, string, string) (runtime.Object, error) {
	f.s.itself = true
	return nil, errTouched
}

type touchClient struct{ s *outcome }

func (f touchClient) PatchEphemeralContainers(context.Context, string, string, types.PatchType, []byte, metav1.PatchOptions) (*corev1.Pod, error) {
	f.s.itself = true
	return nil, errTouched
}
func (f touchClient) List(context.Context, string, metav1.ListOptions) (*corev1.PodList, error) {
	f.s.itself = true
	return nil, errTouched
}
func (f touchClient) Watch(context.Context, string, metav1.ListOptions) (watch.Interface, error) {
	f.s.itself = true
	return nil, errTouched
}

type touchSessions struct{ s *outcome }

func (f touchSessions) Handler(context.Context, session.Request) (http.Handler, error) {
	f.s.itself = true
	return nil, errTouched
}

type askedRBAC struct{ s *outcome }

func (a askedRBAC) Authorize(_ context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	a.s.asked = append(a.s.asked, attrs)
	return authorizer.DecisionAllow, "", nil
}

// agreementChain is the handler chain's pieces in its order, as far as the route is concerned:
// WithRouteRequests, WithRequestInfo (the route's resolver), the user, WithImpersonation and
// WithAuthorization over CoreRBAC, then the Handler. Every check the user's RBAC is asked allows.
func agreementChain(s *outcome) http.Handler {
	rbac := authz.CoreRBAC{Delegate: askedRBAC{s}, PassedThrough: func(ctx context.Context, attrs authorizer.Attributes) bool {
		left := PassedThrough(ctx, attrs)
		if left {
			s.left = append(s.left, attrs)
		}
		return left
	}}
	route := &Handler{Pods: touchPods{s}, Objects: touchObjects{s}, Client: touchClient{s}, Sessions: touchSessions{s},
		PassThrough: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { s.passed = true; w.WriteHeader(http.StatusOK) })}
	h := route.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	h = genericapifilters.WithAuthorization(h, rbac, api.Codecs)
	h = impersonation.WithConstrainedImpersonation(h, rbac, api.Codecs) // the chain's, ConstrainedImpersonation being on by default
	return WithRouteRequests(genericapifilters.WithRequestInfo(asUser(alice, h), testResolver))
}

// FuzzPassThroughAgreement: over any request line and headers, a request whose own check exec-proxy's
// authorizer left to kube-apiserver is never served by exec-proxy itself, what exec-proxy serves
// itself was checked against the user's RBAC, and an impersonation is never left.
func FuzzPassThroughAgreement(f *testing.F) {
	for _, p := range []string{api.RoutePrefix, api.LegacyRoutePrefix} {
		for _, path := range []string{
			"/api/v1/namespaces/ns/pods/p/exec", "/api/v1/namespaces/ns/pods/p/exec/", "/api/v1/namespaces/ns/pods/p//exec",
			"/api/v1/namespaces/ns/pods/p/exec/x", "/api/v1/namespaces/ns/pods/p/./exec", "/api/v1/namespaces/ns/pods/p/x/../exec",
			"/api/v1/namespaces/ns/pods/p%2Fexec", "/api/v1/namespaces/ns/pods/p/ex%65c", "/api/v1/namespaces/ns/pods/p/exec;x=1",
			"/api/v1/namespaces/ns/Pods/p/EXEC", "/api/v1/namespaces/ns/pods/p/attach?stdin=true", "/api/v1/namespaces/ns/pods/p/portforward",
			"/api/v1/namespaces/ns/pods/p/ephemeralcontainers", "/api/v1/namespaces/ns/pods/p", "/api/v1/namespaces/ns/pods/p/log",
			"/api/v1/namespaces/ns/pods?labelSelector=a%3Db", "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p/exec",
			"/apis/apps/v1/namespaces/ns/deployments/web", "//api/v1/namespaces/ns/pods/p/exec", "/api/v1/pods", "/api", "",
			"/apis/execproxy.dev/v1alpha1/routes/kube/proxy/api/v1/namespaces/ns/pods/p/exec",
		} {
			for _, method := range []string{"GET", "POST", "PATCH", "HEAD", "OPTIONS", "IMPERSONATE"} {
				f.Add(method, p+path, "", "")
			}
		}
		// Far enough to reach a session or a pod read, were they not checked.
		for _, query := range []string{"exec?command=ls&stdout=true", "attach?stdout=true", "portforward?ports=80"} {
			f.Add("POST", p+"/api/v1/namespaces/ns/pods/p/"+query, "", "")
			f.Add("GET", p+"/api/v1/namespaces/ns/pods/p/"+query, "Connection: Upgrade\r\nUpgrade: websocket\r\n", "")
		}
		f.Add("PATCH", p+"/api/v1/namespaces/ns/pods/p/ephemeralcontainers", "Content-Type: application/strategic-merge-patch+json\r\n",
			`{"spec":{"ephemeralContainers":[{"name":"d","image":"busybox"}]}}`)
		f.Add("GET", p+"/api/v1/namespaces/ns/pods/p", "", "")
		f.Add("GET", p+"/apis/apps/v1/namespaces/ns/deployments/web", "", "")
	}
	f.Add("GET", "https://evil.example"+api.RoutePrefix+"/api/v1/namespaces/ns/pods/p/exec", "", "")
	f.Add("GET", api.RoutePrefix+"/api/v1/namespaces/ns/pods/p/proxy", "Connection: Upgrade\r\nUpgrade: websocket\r\n", "")
	f.Add("POST", api.RoutePrefix+"/api/v1/namespaces", "Impersonate-User: admin\r\nImpersonate-Group: system:masters\r\n", "{}")
	f.Add("POST", api.RoutePrefix+"/api/v1/namespaces/ns/pods/p/exec", "impersonate-user: admin\r\nIMPERSONATE-EXTRA-scopes: x\r\n", "")
	f.Fuzz(func(t *testing.T, method, target, headers, body string) {
		head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: exec-proxy\r\n%sContent-Length: %d\r\n\r\n", method, target, headers, len(body))
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head + body)))
		if err != nil {
			return
		}
		s := &outcome{}
		agreementChain(s).ServeHTTP(httptest.NewRecorder(), req)
		for _, attrs := range s.left {
			if attrs.GetVerb() == "impersonate" {
				t.Errorf("%s %s: an impersonation was left to kube-apiserver: %#v", method, target, attrs)
			}
		}
		if len(s.left) > 0 && s.itself {
			t.Errorf("%s %s: left to kube-apiserver (%#v) but served by exec-proxy", method, target, s.left)
		}
		// The one request passed through and also checked here: a method named IMPERSONATE, whose
		// non-resource verb PassedThrough will not tell from an impersonation.
		if s.passed && len(s.left) == 0 && req.Method != "IMPERSONATE" {
			t.Errorf("%s %s: passed to kube-apiserver, checked here (%#v)", method, target, s.asked)
		}
		if s.itself && len(s.asked) == 0 {
			t.Errorf("%s %s: served by exec-proxy without asking the user's RBAC", method, target)
		}
	})
}
