package session

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestNewRequest(t *testing.T) {
	cases := []struct {
		name    string
		kind    Kind
		ns, pod string
		opts    runtime.Object
		want    *Request
		wantErr string
	}{
		{"exec", KindExec, "ns", "p", &corev1.PodExecOptions{Command: []string{"ls"}, Stdout: true},
			&Request{Kind: KindExec, Namespace: "ns", Pod: "p", Exec: &corev1.PodExecOptions{Command: []string{"ls"}, Stdout: true}}, ""},
		{"exec without command", KindExec, "ns", "p", &corev1.PodExecOptions{Stdout: true}, nil, "exec needs a command"},
		{"exec without streams", KindExec, "ns", "p", &corev1.PodExecOptions{Command: []string{"ls"}}, nil, "at least one of stdin, stdout and stderr"},
		{"attach", KindAttach, "ns", "p", &corev1.PodAttachOptions{Stdin: true, Stdout: true, Container: "c"},
			&Request{Kind: KindAttach, Namespace: "ns", Pod: "p", Attach: &corev1.PodAttachOptions{Stdin: true, Stdout: true, Container: "c"}}, ""},
		{"attach without streams", KindAttach, "ns", "p", &corev1.PodAttachOptions{}, nil, "at least one of stdin"},
		{"pod name ..", KindExec, "ns", "..", &corev1.PodExecOptions{Command: []string{"ls"}, Stdout: true}, nil, `invalid pod name ".."`},
		{"pod name with a space", KindExec, "ns", "p q", &corev1.PodExecOptions{Command: []string{"ls"}, Stdout: true}, nil, `invalid pod name "p q"`},
		{"pod name with a path parameter", KindAttach, "ns", "p;x=y", &corev1.PodAttachOptions{Stdout: true}, nil, `invalid pod name "p;x=y"`},
		{"upper-case pod name", KindPortForward, "ns", "P", &corev1.PodPortForwardOptions{Ports: []int32{80}}, nil, `invalid pod name "P"`},
		{"namespace with a dot", KindExec, "a.b", "p", &corev1.PodExecOptions{Command: []string{"ls"}, Stdout: true}, nil, `invalid namespace "a.b"`},
		{"port-forward", KindPortForward, "ns", "p", &corev1.PodPortForwardOptions{Ports: []int32{80}},
			&Request{Kind: KindPortForward, Namespace: "ns", Pod: "p", PortForward: &corev1.PodPortForwardOptions{Ports: []int32{80}}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewRequest(tc.kind, tc.ns, tc.pod, tc.opts)
			if tc.wantErr != "" {
				if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want a 400 with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(&got, tc.want) {
				t.Errorf("got %+v %v, want %+v", got, err, tc.want)
			}
		})
	}
}

// TestKinds: the kinds are the session subresources, and each decodes its own options.
func TestKinds(t *testing.T) {
	if got := Subresources(); !reflect.DeepEqual(got, []string{"exec", "attach", "portforward"}) {
		t.Errorf("Subresources() = %v", got)
	}
	for _, sub := range []string{"exec", "attach", "portforward"} {
		if kind, ok := KindFor(sub); !ok || string(kind) != sub {
			t.Errorf("KindFor(%q) = %q, %v", sub, kind, ok)
		}
	}
	for _, sub := range []string{"", "log", "proxy", "Exec", "port-forward"} {
		if kind, ok := KindFor(sub); ok {
			t.Errorf("KindFor(%q) = %q: it opens no session", sub, kind)
		}
	}
	want := map[Kind]runtime.Object{KindExec: &corev1.PodExecOptions{}, KindAttach: &corev1.PodAttachOptions{}, KindPortForward: &corev1.PodPortForwardOptions{}}
	for kind, opts := range want {
		if got := ConnectOptions(kind); !reflect.DeepEqual(got, opts) {
			t.Errorf("ConnectOptions(%s) = %T", kind, got)
		}
	}
}
