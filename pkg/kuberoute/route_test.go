package kuberoute

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// testResolver parses requests as the handler chain does.
var testResolver = RequestInfoResolver{Delegate: &apirequest.RequestInfoFactory{
	APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}}

func withRequestInfo(h *Handler) http.Handler {
	return genericapifilters.WithRequestInfo(h.Wrap(http.NotFoundHandler()), testResolver)
}

func TestRequestInfo(t *testing.T) {
	r := testResolver
	cases := []struct {
		method, path                                 string
		verb, group, resource, subresource, ns, name string
	}{
		{"GET", api.RoutePrefix + "/api/v1/namespaces/ns/pods/p/exec", "create", "", "pods", "exec", "ns", "p"},
		{"POST", api.RoutePrefix + "/api/v1/namespaces/ns/pods/p/exec", "create", "", "pods", "exec", "ns", "p"},
		{"GET", api.RoutePrefix + "/api/v1/namespaces/ns/pods/p/attach", "create", "", "pods", "attach", "ns", "p"},
		{"GET", api.RoutePrefix + "/api/v1/namespaces/ns/pods/p/portforward", "create", "", "pods", "portforward", "ns", "p"},
		{"GET", api.RoutePrefix + "/api/v1/namespaces/ns/pods/p", "get", "", "pods", "", "ns", "p"},
		{"GET", "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p/exec", "create", "execproxy.dev", "pods", "exec", "ns", "p"},
		{"GET", "/api/v1/namespaces/ns/pods/p/log", "get", "", "pods", "log", "ns", "p"},
		{"PATCH", api.RoutePrefix + "/api/v1/namespaces/ns/pods/p/ephemeralcontainers", "patch", "", "pods", "ephemeralcontainers", "ns", "p"},
		{"GET", api.RoutePrefix + "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dp", "list", "", "pods", "", "ns", "p"},
		{"GET", api.RoutePrefix + "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dp&watch=true", "watch", "", "pods", "", "ns", "p"},
		{"GET", api.LegacyRoutePrefix + "/api/v1/namespaces/ns/pods/p/exec", "create", "", "pods", "exec", "ns", "p"},
		{"PATCH", api.LegacyRoutePrefix + "/api/v1/namespaces/ns/pods/p/ephemeralcontainers", "patch", "", "pods", "ephemeralcontainers", "ns", "p"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			info, err := r.NewRequestInfo(httptest.NewRequest(tc.method, tc.path, nil))
			if err != nil {
				t.Fatal(err)
			}
			got := []string{info.Verb, info.APIGroup, info.Resource, info.Subresource, info.Namespace, info.Name}
			want := []string{tc.verb, tc.group, tc.resource, tc.subresource, tc.ns, tc.name}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

type fakePods map[string]*corev1.Pod

func (f fakePods) Pod(namespace, name string) (*corev1.Pod, error) {
	if p, ok := f[namespace+"/"+name]; ok {
		return p, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
}

func (f fakePods) PodsMatching(namespace string, selector labels.Selector) ([]*corev1.Pod, error) {
	var pods []*corev1.Pod
	for _, p := range f {
		if p.Namespace == namespace && selector.Matches(labels.Set(p.Labels)) {
			pods = append(pods, p)
		}
	}
	return pods, nil
}

// fakeObjects holds objects, and the errors of exec-proxy's own reads, by "resource.group/namespace/name".
type fakeObjects struct {
	objects map[string]runtime.Object
	errs    map[string]error
}

func (f fakeObjects) Get(_ context.Context, gr schema.GroupResource, namespace, name string) (runtime.Object, error) {
	key := gr.String() + "/" + namespace + "/" + name
	if obj, ok := f.objects[key]; ok {
		return obj, nil
	}
	if err, ok := f.errs[key]; ok {
		return nil, ownReadError(gr, name, err)
	}
	return nil, apierrors.NewNotFound(gr, name)
}

// fakeSessions records the request it was asked to serve and answers 200.
type fakeSessions struct{ got *session.Request }

func (f *fakeSessions) Handler(_ context.Context, r session.Request) (http.Handler, error) {
	f.got = &r
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }), nil
}

func TestHandler(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Labels: map[string]string{"app": "web"}}}
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "o", Labels: map[string]string{"app": "db"}}}
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}}
	objects := map[string]runtime.Object{"deployments.apps/ns/web": deploy}
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "statefulsets"}, "db", errors.New("RBAC"))
	cases := []struct {
		name, method, path string
		code               int
		message            string
		want               *session.Request
	}{
		{"discovery", "GET", "/api/v1", 200, `"pods/exec"`, nil},
		{"groups", "GET", "/apis", 200, `"apps/v1"`, nil},
		{"apps resources", "GET", "/apis/apps/v1", 200, `"deployments"`, nil},
		{"batch resources", "GET", "/apis/batch/v1", 200, `"jobs"`, nil},
		{"other groups", "GET", "/apis/rbac.authorization.k8s.io/v1", 404, "is not served", nil},
		{"POST discovery", "POST", "/api/v1", 405, "POST is not allowed on /api/v1", nil},
		{"pod read", "GET", "/api/v1/namespaces/ns/pods/p", 200, `"name":"p"`, nil},
		{"pod not found", "GET", "/api/v1/namespaces/ns/pods/q", 404, `pods \"q\" not found`, nil},
		{"exec over GET", "GET", "/api/v1/namespaces/ns/pods/p/exec?command=ls&stdout=true&container=c", 200, "",
			&session.Request{Kind: session.KindExec, Namespace: "ns", Pod: "p", Exec: &corev1.PodExecOptions{Command: []string{"ls"}, Stdout: true, Container: "c"}}},
		{"port-forward over POST", "POST", "/api/v1/namespaces/ns/pods/p/portforward?ports=80", 200, "",
			&session.Request{Kind: session.KindPortForward, Namespace: "ns", Pod: "p", PortForward: &corev1.PodPortForwardOptions{Ports: []int32{80}}}},
		{"exec without command", "POST", "/api/v1/namespaces/ns/pods/p/exec?stdout=true", 400, "exec needs a command", nil},
		{"exec with a reason", "POST", "/api/v1/namespaces/ns/pods/p/exec?command=ls&stdout=true&reason=INC-1%3A+disk+full", 200, "",
			&session.Request{Kind: session.KindExec, Namespace: "ns", Pod: "p", Exec: &corev1.PodExecOptions{Command: []string{"ls"}, Stdout: true}, Justification: "INC-1: disk full"}},
		{"reason given twice", "POST", "/api/v1/namespaces/ns/pods/p/exec?command=ls&stdout=true&reason=a&reason=b", 400, "the session's reason is given 2 times", nil},
		{"reason with a newline", "GET", "/api/v1/namespaces/ns/pods/p/attach?stdout=true&reason=a%0Ab", 400, "one line of printable UTF-8 text", nil},
		{"bad parameter", "POST", "/api/v1/namespaces/ns/pods/p/exec?command=ls&stdout=maybe", 400, "is not a boolean", nil},
		{"pods by selector", "GET", "/api/v1/namespaces/ns/pods?labelSelector=app%3Dweb", 200, `"name":"p"`, nil},
		{"pods by selector, none", "GET", "/api/v1/namespaces/ns/pods?labelSelector=app%3Dnone", 200, `"items":[]`, nil},
		{"bad selector", "GET", "/api/v1/namespaces/ns/pods?labelSelector=app%3D%3D%3D", 400, "labelSelector", nil},
		{"pods by field", "GET", "/api/v1/namespaces/ns/pods?labelSelector=app%3Dweb&fieldSelector=spec.nodeName%3Dn", 400, "not by fieldSelector", nil},
		{"all pods", "GET", "/api/v1/namespaces/ns/pods", 405, "list of pods without a labelSelector or a fieldSelector is not served", nil},
		{"pods in all namespaces", "GET", "/api/v1/pods?labelSelector=app%3Dweb", 404, "is not served", nil},
		{"watch pods", "GET", "/api/v1/namespaces/ns/pods?labelSelector=app%3Dweb&watch=true", 404, `no pod in namespace \"ns\" matches app=web`, nil},
		{"watch all pods", "GET", "/api/v1/namespaces/ns/pods?watch=true", 405, "watch of pods without a labelSelector or a fieldSelector", nil},
		{"deployment", "GET", "/apis/apps/v1/namespaces/ns/deployments/web", 200, `"kind":"Deployment"`, nil},
		{"deployment not found", "GET", "/apis/apps/v1/namespaces/ns/deployments/api", 404, `deployments.apps \"api\" not found`, nil},
		{"own read refused", "GET", "/apis/apps/v1/namespaces/ns/statefulsets/db", 502, "give its ClusterRole get on statefulsets.apps", nil},
		{"deployment scale", "GET", "/apis/apps/v1/namespaces/ns/deployments/web/scale", 404, "is not served", nil},
		{"list deployments", "GET", "/apis/apps/v1/namespaces/ns/deployments", 405, "GET is not allowed on deployments.apps", nil},
		{"delete deployment", "DELETE", "/apis/apps/v1/namespaces/ns/deployments/web", 405, "DELETE is not allowed on deployments.apps", nil},
		{"old group version", "GET", "/apis/apps/v1beta1/namespaces/ns/deployments/web", 404, "is not served", nil},
		{"logs", "GET", "/api/v1/namespaces/ns/pods/p/log", 404, "is not served", nil},
		{"other resources", "GET", "/api/v1/namespaces/ns/secrets/s", 404, "is not served", nil},
		{"delete pod", "DELETE", "/api/v1/namespaces/ns/pods/p", 405, "DELETE is not allowed on pods", nil},
		{"PUT exec", "PUT", "/api/v1/namespaces/ns/pods/p/exec?command=ls&stdout=true", 405, "PUT is not allowed on pods/exec", nil},
		{"namespace read", "GET", "/api/v1/namespaces/ns", 405, "is not allowed on namespaces", nil},
		{"a path after exec", "GET", "/api/v1/namespaces/ns/pods/p/exec/anything?command=ls&stdout=true", 404, "is not served", nil},
		{"an empty segment before exec", "GET", "/api/v1/namespaces/ns/pods/p//exec?command=ls&stdout=true", 404, "is not served", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sessions := &fakeSessions{}
			h := withRequestInfo(&Handler{Pods: fakePods{"ns/p": pod, "ns/o": other}, Objects: fakeObjects{objects, map[string]error{"statefulsets.apps/ns/db": forbidden}}, Sessions: sessions})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, api.RoutePrefix+tc.path, nil))
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.message) {
				t.Errorf("got %d %s, want %d with %q", rec.Code, rec.Body, tc.code, tc.message)
			}
			if tc.code >= 400 {
				var st metav1.Status
				if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Kind != "Status" || int(st.Code) != tc.code {
					t.Errorf("not a Status with code %d: %s", tc.code, rec.Body)
				}
			}
			if !reflect.DeepEqual(sessions.got, tc.want) {
				t.Errorf("session request %+v, want %+v", sessions.got, tc.want)
			}
		})
	}
	t.Run("an upgrade that opens no session", func(t *testing.T) {
		for _, path := range []string{"/api/v1/namespaces/ns/pods/p", "/api/v1/namespaces/ns/pods/p/log", "/apis/apps/v1/namespaces/ns/deployments/web"} {
			h := withRequestInfo(&Handler{Pods: fakePods{"ns/p": pod}, Objects: fakeObjects{objects, nil}, Sessions: &fakeSessions{}})
			req := httptest.NewRequest("GET", api.RoutePrefix+path, nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var st metav1.Status
			if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || rec.Code != 400 || st.Code != 400 || !strings.Contains(st.Message, "opens no session") {
				t.Errorf("%s: got %d %s, want a 400 Status", path, rec.Code, rec.Body)
			}
		}
	})
	t.Run("paths outside the route pass through", func(t *testing.T) {
		h := (&Handler{}).Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
		h = genericapifilters.WithRequestInfo(h, testResolver)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/apis/execproxy.dev/v1alpha1", nil))
		if rec.Code != http.StatusTeapot {
			t.Errorf("got %d", rec.Code)
		}
	})
}
