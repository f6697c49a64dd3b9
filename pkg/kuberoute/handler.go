package kuberoute

import (
	"fmt"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/registry/pod"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// Handler serves the route. Requests reach it authenticated and authorized by the handler chain,
// which parsed them (RequestInfoResolver) as the core requests they stand for: the handler serves
// exactly the request that was authorized.
type Handler struct {
	Pods     Pods
	Objects  Objects
	Client   PodClient
	Sessions pod.Handlers
	// Audit records the ephemeral containers the route adds; nil records none.
	Audit *sessionaudit.Auditor
	// Ephemeral checks an ephemeral container before the route adds it; nil checks none.
	Ephemeral EphemeralCheck
	// PassThrough sends what the route does not serve itself to kube-apiserver as the user (see
	// PassedThrough); nil: the route serves only the sessions and the reads kubectl makes for them.
	PassThrough http.Handler
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

func (h *Handler) serve(w http.ResponseWriter, req *http.Request, core string) {
	info, ok := apirequest.RequestInfoFrom(req.Context())
	if !ok {
		session.WriteStatus(w, req, apierrors.NewInternalError(fmt.Errorf("no request info for %s", core)))
		return
	}
	if h.PassThrough != nil && !servedItself(info.IsResourceRequest, info.APIGroup, info.Resource, info.Subresource) {
		if httpstream.IsUpgradeRequest(req) {
			session.WriteStatus(w, req, noSession(core))
			return
		}
		h.PassThrough.ServeHTTP(w, req)
		return
	}
	if !info.IsResourceRequest {
		h.discovery(w, req, strings.TrimSuffix(core, "/"))
		return
	}
	gr := schema.GroupResource{Group: info.APIGroup, Resource: info.Resource}
	_, connect := session.KindFor(info.Subresource)
	connect = connect && gr == schema.GroupResource{Resource: "pods"}
	switch {
	case len(info.Parts) > 3 || (len(info.Parts) == 3 && info.Subresource == ""):
		// A path after the subresource, or an empty segment (pods/p//exec): kube-apiserver serves
		// neither, and the parts it was not read by must not open a session or read a pod.
		session.WriteStatus(w, req, notServed(core))
	case httpstream.IsUpgradeRequest(req) && !connect:
		session.WriteStatus(w, req, noSession(core))
	case info.Namespace == "" || info.APIVersion != "v1":
		session.WriteStatus(w, req, notServed(core))
	case gr == schema.GroupResource{Resource: "pods"}:
		h.pods(w, req, info, core)
	case gr == schema.GroupResource{Resource: "namespaces"}:
		// kubectl follows a pod's NotFound with a GET of its namespace and reports that 404
		// instead; a 405 keeps the pod's own error in front of the user.
		session.WriteStatus(w, req, methodNotAllowed(req.Method, "namespaces"))
	case !workloadResources[gr] || info.Subresource != "":
		session.WriteStatus(w, req, notServed(core))
	case info.Verb != "get":
		session.WriteStatus(w, req, methodNotAllowed(req.Method, gr.String()))
	default:
		obj, err := h.Objects.Get(req.Context(), gr, info.Namespace, info.Name)
		h.write(w, req, gr.WithVersion("v1").GroupVersion(), obj, err)
	}
}

func (h *Handler) discovery(w http.ResponseWriter, req *http.Request, path string) {
	doc := discovery(path, req)
	switch {
	case doc == nil:
		session.WriteStatus(w, req, notServed(path))
	case req.Method != http.MethodGet:
		session.WriteStatus(w, req, methodNotAllowed(req.Method, path))
	default:
		writeObject(w, req, schema.GroupVersion{}, doc)
	}
}

func (h *Handler) pods(w http.ResponseWriter, req *http.Request, info *apirequest.RequestInfo, core string) {
	if kind, ok := session.KindFor(info.Subresource); ok {
		h.connect(w, req, kind, info.Namespace, info.Name)
		return
	}
	q := req.URL.Query()
	switch {
	case info.Subresource == "ephemeralcontainers":
		h.ephemeralContainers(w, req, info)
	case info.Subresource != "":
		session.WriteStatus(w, req, notServed(core))
	case info.Verb == "get":
		p, err := h.Pods.Pod(info.Namespace, info.Name)
		if err == nil {
			p = p.DeepCopy()
		}
		h.write(w, req, corev1.SchemeGroupVersion, p, err)
	case info.Verb == "list" && q.Get("labelSelector") != "":
		h.listPods(w, req, info.Namespace)
	case info.Verb == "watch" && q.Get("labelSelector") != "":
		// kubectl watches only when its list found no pod of a TYPE/NAME target.
		session.WriteStatus(w, req, noPodMatches(info.Namespace, q.Get("labelSelector")))
	case (info.Verb == "list" || info.Verb == "watch") && q.Get("fieldSelector") != "":
		h.podByName(w, req, info)
	case info.Verb == "list" || info.Verb == "watch":
		session.WriteStatus(w, req, listNotServed(info.Verb))
	default:
		session.WriteStatus(w, req, methodNotAllowed(req.Method, "pods"))
	}
}

// listPods answers the list kubectl makes to find a pod of a TYPE/NAME target.
func (h *Handler) listPods(w http.ResponseWriter, req *http.Request, namespace string) {
	selector, err := labels.Parse(req.URL.Query().Get("labelSelector"))
	if err != nil {
		session.WriteStatus(w, req, apierrors.NewBadRequest(fmt.Sprintf("labelSelector: %v", err)))
		return
	}
	if req.URL.Query().Get("fieldSelector") != "" {
		session.WriteStatus(w, req, apierrors.NewBadRequest("exec-proxy's kube route lists pods by labelSelector only, not by fieldSelector"))
		return
	}
	pods, err := h.Pods.PodsMatching(namespace, selector)
	list := &corev1.PodList{Items: make([]corev1.Pod, 0, len(pods))}
	for _, p := range pods {
		list.Items = append(list.Items, *p.DeepCopy())
	}
	h.write(w, req, corev1.SchemeGroupVersion, list, err)
}

func (h *Handler) connect(w http.ResponseWriter, req *http.Request, kind session.Kind, namespace, name string) {
	if req.Method != http.MethodGet && req.Method != http.MethodPost {
		session.WriteStatus(w, req, methodNotAllowed(req.Method, "pods/"+string(kind)))
		return
	}
	opts := session.ConnectOptions(kind)
	if err := api.ParameterCodec.DecodeParameters(req.URL.Query(), api.SchemeGroupVersion, opts); err != nil {
		session.WriteStatus(w, req, apierrors.NewBadRequest(err.Error()))
		return
	}
	r, err := session.NewRequest(kind, namespace, name, opts)
	if err == nil {
		r.Justification, err = session.Justification(req.URL.Query())
	}
	if err != nil {
		session.WriteStatus(w, req, err)
		return
	}
	handler, err := h.Sessions.Handler(req.Context(), r)
	if err != nil {
		session.WriteStatus(w, req, err)
		return
	}
	handler.ServeHTTP(w, req)
}

func (h *Handler) write(w http.ResponseWriter, req *http.Request, gv schema.GroupVersion, obj runtime.Object, err error) {
	if err != nil {
		session.WriteStatus(w, req, err)
		return
	}
	writeObject(w, req, gv, obj)
}

func writeObject(w http.ResponseWriter, req *http.Request, gv schema.GroupVersion, obj runtime.Object) {
	responsewriters.WriteObjectNegotiated(api.Codecs, negotiation.DefaultEndpointRestrictions, gv, w, req, http.StatusOK, obj, false)
}

const served = "exec-proxy's kube route serves only discovery, GET of a pod, the pods/exec, pods/attach and " +
	"pods/portforward subresources, the reads kubectl makes to find a pod for TYPE/NAME (GET of a " +
	"deployment, statefulset, daemonset, replicaset, job, service or replicationcontroller, and pods by labelSelector), " +
	"and what kubectl debug does (PATCH of pods/ephemeralcontainers, list and watch of a pod by fieldSelector metadata.name)"

// noSession refuses a connection upgrade to what is not a session: answered as a read or passed on,
// it would reach the client as kube-apiserver's bare 503.
func noSession(core string) error {
	return apierrors.NewBadRequest(fmt.Sprintf(
		"%s opens no session: a connection upgrade is served only on pods/exec, pods/attach and pods/portforward", core))
}

// notServed has empty Details, as kube-apiserver's 404 for a subresource it does not serve: kubectl
// debug reads a 404's Details.Name without checking for nil (and panics).
func notServed(path string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound,
		Message: fmt.Sprintf("%s is not served: %s; use the kube-apiserver directly for anything else", path, served),
		Details: &metav1.StatusDetails{},
	}}
}

func listNotServed(verb string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusMethodNotAllowed, Reason: metav1.StatusReasonMethodNotAllowed,
		Message: fmt.Sprintf("%s of pods without a labelSelector or a fieldSelector is not served: %s", verb, served),
	}}
}

func noPodMatches(namespace, selector string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound,
		Message: fmt.Sprintf("no pod in namespace %q matches %s (exec-proxy's kube route does not wait for one: try again once a pod runs)", namespace, selector),
		Details: &metav1.StatusDetails{Kind: "pods"},
	}}
}

func methodNotAllowed(method, what string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusMethodNotAllowed, Reason: metav1.StatusReasonMethodNotAllowed,
		Message: fmt.Sprintf("%s is not allowed on %s: %s", method, what, served),
	}}
}
