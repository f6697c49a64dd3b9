package pod

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

type fakeHandlers struct{ got *session.Request }

func (f *fakeHandlers) Handler(_ context.Context, r session.Request) (http.Handler, error) {
	f.got = &r
	return http.NotFoundHandler(), nil
}

// TestConnect: each subresource serves its kind of session, and an invalid request does not reach
// the proxy (the validation itself is tested in package session).
func TestConnect(t *testing.T) {
	cases := []struct {
		name     string
		resource string
		ns, pod  string
		opts     runtime.Object
		want     *session.Request
		wantErr  string
	}{
		{"exec", "pods/exec", "ns", "p", &corev1.PodExecOptions{Command: []string{"ls"}, Stdout: true},
			&session.Request{Kind: session.KindExec, Namespace: "ns", Pod: "p", Exec: &corev1.PodExecOptions{Command: []string{"ls"}, Stdout: true}, Justification: "INC-1"}, ""},
		{"exec without command", "pods/exec", "ns", "p", &corev1.PodExecOptions{Stdout: true}, nil, "exec needs a command"},
		{"attach", "pods/attach", "ns", "p", &corev1.PodAttachOptions{Stdin: true, Stdout: true, Container: "c"},
			&session.Request{Kind: session.KindAttach, Namespace: "ns", Pod: "p", Attach: &corev1.PodAttachOptions{Stdin: true, Stdout: true, Container: "c"}, Justification: "INC-1"}, ""},
		{"port-forward", "pods/portforward", "ns", "p", &corev1.PodPortForwardOptions{Ports: []int32{80}},
			&session.Request{Kind: session.KindPortForward, Namespace: "ns", Pod: "p", PortForward: &corev1.PodPortForwardOptions{Ports: []int32{80}}, Justification: "INC-1"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &fakeHandlers{}
			storage := NewREST(h)[tc.resource].(*REST)
			if got := storage.ConnectMethods(); !reflect.DeepEqual(got, []string{"GET", "POST"}) {
				t.Errorf("ConnectMethods = %v: WebSocket clients need GET, SPDY POST", got)
			}
			ctx := genericapirequest.WithNamespace(context.Background(), tc.ns)
			handler, err := storage.Connect(ctx, tc.pod, tc.opts, nil)
			if err == nil {
				handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/?reason=INC-1", nil))
			}
			if tc.wantErr != "" {
				if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want a 400 with %q", err, tc.wantErr)
				}
				if h.got != nil {
					t.Error("an invalid request reached the proxy")
				}
				return
			}
			if err != nil || !reflect.DeepEqual(h.got, tc.want) {
				t.Errorf("got %+v %v, want %+v", h.got, err, tc.want)
			}
		})
	}
}
