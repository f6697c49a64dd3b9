// Package pod serves execproxy.dev/v1alpha1 pods and their exec, attach and portforward subresources.
package pod

import (
	"context"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// Handlers is what serves a session; *proxy.Proxier in production, a fake in tests.
type Handlers interface {
	Handler(ctx context.Context, r session.Request) (http.Handler, error)
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
	kind     session.Kind
	handlers Handlers
}

var _ = rest.Connecter(&REST{})

// NewREST returns the storage map entries for pods and its subresources.
func NewREST(h Handlers) map[string]rest.Storage {
	storage := map[string]rest.Storage{"pods": &Storage{}}
	for _, kind := range session.Kinds {
		storage["pods/"+string(kind)] = &REST{kind: kind, handlers: h}
	}
	return storage
}

func (r *REST) New() runtime.Object {
	obj, _, _ := r.NewConnectOptions()
	return obj
}

func (r *REST) Destroy() {}

func (r *REST) ConnectMethods() []string { return upgradeableMethods }

func (r *REST) NewConnectOptions() (runtime.Object, bool, string) {
	return session.ConnectOptions(r.kind), false, ""
}

// Connect returns the session handler. Authorization (create on core pods/<subresource>, also for
// WebSocket GETs) has been done by the handler chain. The session opens when the handler is served:
// the reason a user gives is in the request's query, which opts does not hold.
func (r *REST) Connect(ctx context.Context, name string, opts runtime.Object, _ rest.Responder) (http.Handler, error) {
	namespace, _ := request.NamespaceFrom(ctx)
	sr, err := session.NewRequest(r.kind, namespace, name, opts)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		sr.Justification, err = session.Justification(req.URL.Query())
		var h http.Handler
		if err == nil {
			h, err = r.handlers.Handler(req.Context(), sr)
		}
		if err != nil {
			session.WriteStatus(w, req, err)
			return
		}
		h.ServeHTTP(w, req)
	}), nil
}
