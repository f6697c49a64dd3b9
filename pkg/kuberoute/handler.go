package kuberoute

import (
	"fmt"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/proxy"
	"github.com/exec-proxy/exec-proxy/pkg/registry/pod"
)

// PodGetter reads pods; the informer-backed resolver in production.
type PodGetter interface {
	Pod(namespace, name string) (*corev1.Pod, error)
}

// Handler serves the route. Requests reach it authenticated and authorized by the handler chain.
type Handler struct {
	Pods     PodGetter
	Sessions pod.Handlers
}

// Wrap sends route paths to h and everything else to next.
func (h *Handler) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		core, ok := Strip(req.URL.Path)
		if !ok {
			next.ServeHTTP(w, req)
			return
		}
		h.serve(w, req, core)
	})
}

var subresourceKinds = map[string]proxy.Kind{
	"exec": proxy.KindExec, "attach": proxy.KindAttach, "portforward": proxy.KindPortForward,
}

func (h *Handler) serve(w http.ResponseWriter, req *http.Request, core string) {
	switch core {
	case "/api", "/api/", "/apis", "/apis/", "/api/v1", "/api/v1/":
		if req.Method != http.MethodGet {
			proxy.WriteStatus(w, req, methodNotAllowed(req.Method, core))
			return
		}
		writeObject(w, req, schema.GroupVersion{}, discovery(strings.TrimSuffix(core, "/"), req))
		return
	}
	parts := strings.Split(strings.TrimPrefix(core, "/api/v1/namespaces/"), "/")
	if strings.HasPrefix(core, "/api/v1/namespaces/") && len(parts) == 1 {
		// kubectl follows a pod's NotFound with a GET of its namespace and reports that 404
		// instead; a 405 keeps the pod's own error in front of the user.
		proxy.WriteStatus(w, req, methodNotAllowed(req.Method, "namespaces"))
		return
	}
	if !strings.HasPrefix(core, "/api/v1/namespaces/") || len(parts) < 3 || len(parts) > 4 ||
		parts[1] != "pods" || parts[0] == "" || parts[2] == "" {
		proxy.WriteStatus(w, req, notServed(core))
		return
	}
	namespace, name := parts[0], parts[2]
	if len(parts) == 3 {
		h.getPod(w, req, namespace, name)
		return
	}
	kind, ok := subresourceKinds[parts[3]]
	if !ok {
		proxy.WriteStatus(w, req, notServed(core))
		return
	}
	h.connect(w, req, kind, namespace, name)
}

func (h *Handler) getPod(w http.ResponseWriter, req *http.Request, namespace, name string) {
	if req.Method != http.MethodGet {
		proxy.WriteStatus(w, req, methodNotAllowed(req.Method, "pods"))
		return
	}
	p, err := h.Pods.Pod(namespace, name)
	if err != nil {
		proxy.WriteStatus(w, req, err)
		return
	}
	writeObject(w, req, corev1.SchemeGroupVersion, p.DeepCopy())
}

func (h *Handler) connect(w http.ResponseWriter, req *http.Request, kind proxy.Kind, namespace, name string) {
	if req.Method != http.MethodGet && req.Method != http.MethodPost {
		proxy.WriteStatus(w, req, methodNotAllowed(req.Method, "pods/"+string(kind)))
		return
	}
	opts := connectOptions(kind)
	if err := api.ParameterCodec.DecodeParameters(req.URL.Query(), api.SchemeGroupVersion, opts); err != nil {
		proxy.WriteStatus(w, req, apierrors.NewBadRequest(err.Error()))
		return
	}
	r, err := pod.NewRequest(kind, namespace, name, opts)
	if err != nil {
		proxy.WriteStatus(w, req, err)
		return
	}
	handler, err := h.Sessions.Handler(req.Context(), r)
	if err != nil {
		proxy.WriteStatus(w, req, err)
		return
	}
	handler.ServeHTTP(w, req)
}

func connectOptions(kind proxy.Kind) runtime.Object {
	switch kind {
	case proxy.KindExec:
		return &corev1.PodExecOptions{}
	case proxy.KindAttach:
		return &corev1.PodAttachOptions{}
	}
	return &corev1.PodPortForwardOptions{}
}

func writeObject(w http.ResponseWriter, req *http.Request, gv schema.GroupVersion, obj runtime.Object) {
	responsewriters.WriteObjectNegotiated(api.Codecs, negotiation.DefaultEndpointRestrictions, gv, w, req, http.StatusOK, obj, false)
}

const served = "exec-proxy's kube route serves only discovery, GET of a pod, and the pods/exec, pods/attach and pods/portforward subresources"

func notServed(path string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound,
		Message: fmt.Sprintf("%s is not served: %s; use the kube-apiserver directly for anything else", path, served),
	}}
}

func methodNotAllowed(method, what string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusMethodNotAllowed, Reason: metav1.StatusReasonMethodNotAllowed,
		Message: fmt.Sprintf("%s is not allowed on %s: %s", method, what, served),
	}}
}
