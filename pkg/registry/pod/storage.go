// Package pod serves execproxy.dev/v1alpha1 pods and their exec, attach and portforward subresources.
package pod

import (
	"context"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/exec-proxy/exec-proxy/pkg/proxy"
)

// Handlers is what serves a session; *proxy.Proxier in production, a fake in tests.
type Handlers interface {
	Handler(ctx context.Context, r proxy.Request) (http.Handler, error)
}

// Storage is the parent of the connect subresources. It serves no verbs itself: pods are read
// from the core API; it exists because a subresource needs a namespaced parent.
type Storage struct{}

var (
	_ rest.Storage = &Storage{}
	_ rest.Scoper  = &Storage{}
)

func (*Storage) New() runtime.Object     { return &corev1.Pod{} }
func (*Storage) Destroy()                {}
func (*Storage) NamespaceScoped() bool   { return true }
func (*Storage) GetSingularName() string { return "pod" }

// GET is needed for WebSocket clients, which cannot POST an upgrade.
var upgradeableMethods = []string{"GET", "POST"}

// REST is one connect subresource.
type REST struct {
	kind     proxy.Kind
	handlers Handlers
}

var _ = rest.Connecter(&REST{})

// NewREST returns the storage map entries for pods and its subresources.
func NewREST(h Handlers) map[string]rest.Storage {
	return map[string]rest.Storage{
		"pods":             &Storage{},
		"pods/exec":        &REST{kind: proxy.KindExec, handlers: h},
		"pods/attach":      &REST{kind: proxy.KindAttach, handlers: h},
		"pods/portforward": &REST{kind: proxy.KindPortForward, handlers: h},
	}
}

func (r *REST) New() runtime.Object {
	obj, _, _ := r.NewConnectOptions()
	return obj
}

func (r *REST) Destroy() {}

func (r *REST) ConnectMethods() []string { return upgradeableMethods }

func (r *REST) NewConnectOptions() (runtime.Object, bool, string) {
	switch r.kind {
	case proxy.KindExec:
		return &corev1.PodExecOptions{}, false, ""
	case proxy.KindAttach:
		return &corev1.PodAttachOptions{}, false, ""
	default:
		return &corev1.PodPortForwardOptions{}, false, ""
	}
}

// Connect returns the session handler. Authorization (create on core pods/<subresource>, also for
// WebSocket GETs) has been done by the handler chain.
func (r *REST) Connect(ctx context.Context, name string, opts runtime.Object, _ rest.Responder) (http.Handler, error) {
	namespace, _ := request.NamespaceFrom(ctx)
	req, err := NewRequest(r.kind, namespace, name, opts)
	if err != nil {
		return nil, err
	}
	return r.handlers.Handler(ctx, req)
}

// NewRequest checks the options for kind and builds the proxy request.
func NewRequest(kind proxy.Kind, namespace, name string, opts runtime.Object) (proxy.Request, error) {
	req := proxy.Request{Kind: kind, Namespace: namespace, Pod: name}
	if err := validateNames(namespace, name); err != nil {
		return req, err
	}
	switch o := opts.(type) {
	case *corev1.PodExecOptions:
		req.Exec = o
		return req, validateStreams(kind, o.Stdin, o.Stdout, o.Stderr, len(o.Command) == 0)
	case *corev1.PodAttachOptions:
		req.Attach = o
		return req, validateStreams(kind, o.Stdin, o.Stdout, o.Stderr, false)
	case *corev1.PodPortForwardOptions:
		req.PortForward = o
		return req, nil
	}
	return req, fmt.Errorf("invalid options object: %T", opts)
}
