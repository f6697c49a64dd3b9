package kuberoute

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/exec-proxy/exec-proxy/pkg/proxy"
)

func TestRequestInfo(t *testing.T) {
	r := RequestInfoResolver{Delegate: &apirequest.RequestInfoFactory{
		APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}}
	cases := []struct {
		method, path                                 string
		verb, group, resource, subresource, ns, name string
	}{
		{"GET", Prefix + "/api/v1/namespaces/ns/pods/p/exec", "create", "", "pods", "exec", "ns", "p"},
		{"POST", Prefix + "/api/v1/namespaces/ns/pods/p/exec", "create", "", "pods", "exec", "ns", "p"},
		{"GET", Prefix + "/api/v1/namespaces/ns/pods/p/attach", "create", "", "pods", "attach", "ns", "p"},
		{"GET", Prefix + "/api/v1/namespaces/ns/pods/p/portforward", "create", "", "pods", "portforward", "ns", "p"},
		{"GET", Prefix + "/api/v1/namespaces/ns/pods/p", "get", "", "pods", "", "ns", "p"},
		{"GET", "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p/exec", "create", "execproxy.dev", "pods", "exec", "ns", "p"},
		{"GET", "/api/v1/namespaces/ns/pods/p/log", "get", "", "pods", "log", "ns", "p"},
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

// fakeSessions records the request it was asked to serve and answers 200.
type fakeSessions struct{ got *proxy.Request }

func (f *fakeSessions) Handler(_ context.Context, r proxy.Request) (http.Handler, error) {
	f.got = &r
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }), nil
}

func TestHandler(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}
	cases := []struct {
		name, method, path string
		code               int
		message            string
		want               *proxy.Request
	}{
		{"discovery", "GET", "/api/v1", 200, `"pods/exec"`, nil},
		{"pod read", "GET", "/api/v1/namespaces/ns/pods/p", 200, `"name":"p"`, nil},
		{"pod not found", "GET", "/api/v1/namespaces/ns/pods/q", 404, `pods \"q\" not found`, nil},
		{"exec over GET", "GET", "/api/v1/namespaces/ns/pods/p/exec?command=ls&stdout=true&container=c", 200, "",
			&proxy.Request{Kind: proxy.KindExec, Namespace: "ns", Pod: "p", Exec: &corev1.PodExecOptions{Command: []string{"ls"}, Stdout: true, Container: "c"}}},
		{"port-forward over POST", "POST", "/api/v1/namespaces/ns/pods/p/portforward?ports=80", 200, "",
			&proxy.Request{Kind: proxy.KindPortForward, Namespace: "ns", Pod: "p", PortForward: &corev1.PodPortForwardOptions{Ports: []int32{80}}}},
		{"exec without command", "POST", "/api/v1/namespaces/ns/pods/p/exec?stdout=true", 400, "exec needs a command", nil},
		{"bad parameter", "POST", "/api/v1/namespaces/ns/pods/p/exec?command=ls&stdout=maybe", 400, "is not a boolean", nil},
		{"list pods", "GET", "/api/v1/namespaces/ns/pods", 404, "is not served: exec-proxy's kube route serves only", nil},
		{"logs", "GET", "/api/v1/namespaces/ns/pods/p/log", 404, "is not served", nil},
		{"other resources", "GET", "/api/v1/namespaces/ns/secrets/s", 404, "is not served", nil},
		{"groups", "GET", "/apis/apps/v1", 404, "is not served", nil},
		{"delete pod", "DELETE", "/api/v1/namespaces/ns/pods/p", 405, "DELETE is not allowed on pods", nil},
		{"PUT exec", "PUT", "/api/v1/namespaces/ns/pods/p/exec?command=ls&stdout=true", 405, "PUT is not allowed on pods/exec", nil},
		{"namespace read", "GET", "/api/v1/namespaces/ns", 405, "is not allowed on namespaces", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sessions := &fakeSessions{}
			h := (&Handler{Pods: fakePods{"ns/p": pod}, Sessions: sessions}).Wrap(http.NotFoundHandler())
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, Prefix+tc.path, nil))
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
	t.Run("paths outside the route pass through", func(t *testing.T) {
		h := (&Handler{}).Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/apis/execproxy.dev/v1alpha1", nil))
		if rec.Code != http.StatusTeapot {
			t.Errorf("got %d", rec.Code)
		}
	})
}
