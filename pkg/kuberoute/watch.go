package kuberoute

import (
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/endpoints/handlers"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// maxWatch bounds a watch the route serves: kube-apiserver's own default (--min-request-timeout).
const maxWatch = 30 * time.Minute

// podByName serves the list and the watch with which kubectl debug waits for its container to run
// (watchtools.UntilWithSync with fieldSelector metadata.name=POD). The chain authorized the user for
// list or watch of pods, with that name (the request-info parser takes it from the selector); they
// are made with exec-proxy's own client with exactly that field selector, so they show one pod.
func (h *Handler) podByName(w http.ResponseWriter, req *http.Request, info *apirequest.RequestInfo) {
	opts, err := byNameOptions(req, info)
	if err != nil {
		session.WriteStatus(w, req, err)
		return
	}
	if info.Verb == "list" {
		list, err := h.Client.List(req.Context(), info.Namespace, opts)
		h.write(w, req, corev1.SchemeGroupVersion, list, err)
		return
	}
	h.watch(w, req, info.Namespace, opts)
}

// byNameOptions are the options the route lists or watches a pod with: the field selector as sent,
// which must be metadata.name=NAME alone, and the options a reflector sends with it.
func byNameOptions(req *http.Request, info *apirequest.RequestInfo) (metav1.ListOptions, error) {
	var sent metav1.ListOptions
	if err := scheme.ParameterCodec.DecodeParameters(req.URL.Query(), corev1.SchemeGroupVersion, &sent); err != nil {
		return sent, apierrors.NewBadRequest(err.Error())
	}
	selector, err := fields.ParseSelector(sent.FieldSelector)
	if err != nil {
		return sent, apierrors.NewBadRequest(fmt.Sprintf("fieldSelector: %v", err))
	}
	name, ok := selector.RequiresExactMatch("metadata.name")
	if !ok || len(selector.Requirements()) != 1 || name != info.Name || name == "" {
		return sent, apierrors.NewBadRequest(fmt.Sprintf(
			"exec-proxy's kube route lists and watches pods by fieldSelector metadata.name=NAME alone, not %q", sent.FieldSelector))
	}
	opts := metav1.ListOptions{
		FieldSelector: sent.FieldSelector, ResourceVersion: sent.ResourceVersion, ResourceVersionMatch: sent.ResourceVersionMatch,
		TimeoutSeconds: sent.TimeoutSeconds, Limit: sent.Limit, Continue: sent.Continue,
		Watch: info.Verb == "watch", AllowWatchBookmarks: sent.AllowWatchBookmarks, SendInitialEvents: sent.SendInitialEvents,
	}
	if opts.Watch {
		// kube-apiserver ends its side of the watch no later than the route ends the client's.
		if limit := int64(maxWatch / time.Second); opts.TimeoutSeconds == nil || *opts.TimeoutSeconds <= 0 || *opts.TimeoutSeconds > limit {
			opts.TimeoutSeconds = &limit
		}
	}
	return opts, nil
}

// watch streams the events of exec-proxy's watch in the encoding the client negotiated, with
// k8s.io/apiserver's own watch server, as kube-apiserver would. The watch ends when the client goes,
// after its timeout, or when kube-apiserver ends it.
func (h *Handler) watch(w http.ResponseWriter, req *http.Request, namespace string, opts metav1.ListOptions) {
	serializer, err := negotiation.NegotiateOutputMediaTypeStream(req, api.Codecs, negotiation.DefaultEndpointRestrictions)
	if err != nil {
		session.WriteStatus(w, req, err)
		return
	}
	watcher, err := h.Client.Watch(req.Context(), namespace, opts)
	if err != nil {
		session.WriteStatus(w, req, err)
		return
	}
	defer watcher.Stop()
	mediaType := serializer.MediaType
	if mediaType != runtime.ContentTypeJSON {
		mediaType += ";stream=watch"
	}
	gv := corev1.SchemeGroupVersion
	server := &handlers.WatchServer{
		Watching:        watcher,
		Scope:           &handlers.RequestScope{Serializer: api.Codecs, Kind: gv.WithKind("Pod"), Resource: gv.WithResource("pods")},
		UseTextFraming:  serializer.EncodesAsText,
		MediaType:       mediaType,
		Framer:          serializer.StreamSerializer.Framer,
		Encoder:         api.Codecs.EncoderForVersion(serializer.StreamSerializer.Serializer, gv),
		EmbeddedEncoder: api.Codecs.EncoderForVersion(serializer.Serializer, gv),
		TimeoutFactory:  watchTimeout(time.Duration(*opts.TimeoutSeconds) * time.Second),
	}
	server.HandleHTTP(w, req)
}

// watchTimeout ends a served watch after its duration.
type watchTimeout time.Duration

func (d watchTimeout) TimeoutCh() (<-chan time.Time, func() bool) {
	t := time.NewTimer(time.Duration(d))
	return t.C, t.Stop
}
