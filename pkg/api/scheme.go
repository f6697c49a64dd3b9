// Package api holds exec-proxy's API group execproxy.dev/v1alpha1 and the scheme that serves it.
package api

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

// GroupName is the API group exec-proxy serves.
const GroupName = "execproxy.dev"

// Version is the only version of the group.
const Version = "v1alpha1"

// RoutePrefix is the route (package kuberoute): a kubeconfig whose server is
// <kube-apiserver>RoutePrefix sends kubectl's sessions through exec-proxy, and everything else back
// to kube-apiserver. kube-apiserver parses it as the proxy subresource of routes/kube, which it holds
// long-running, as it does pods/exec: a session through it takes no priority-and-fairness seat.
const RoutePrefix = "/apis/" + GroupName + "/" + Version + "/routes/kube/proxy"

// LegacyRoutePrefix is the route's path before RoutePrefix, still served for the kubeconfigs written
// with it. kube-apiserver parses it as kube/<segment>, an ordinary request, so each session through
// it holds a priority-and-fairness seat for its whole life: deploy/'s FlowSchema confines those to a
// priority level of their own, and kubectl execproxy setup rewrites such kubeconfigs.
const LegacyRoutePrefix = "/apis/" + GroupName + "/" + Version + "/kube"

// SchemeGroupVersion is the only version of the group.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: Version}

var (
	// Scheme knows the connect option types of execproxy.dev/v1alpha1 and core/v1 (for the kube route).
	Scheme = runtime.NewScheme()
	// Codecs serve Scheme.
	Codecs = serializer.NewCodecFactory(Scheme)
	// ParameterCodec decodes connect options from query parameters with strict conversions.
	ParameterCodec = runtime.NewParameterCodec(Scheme)
)

func init() {
	utilruntime.Must(AddToScheme(Scheme))
}

// AddToScheme registers the connect option types under execproxy.dev/v1alpha1, core/v1 for the
// kube route, and the url.Values conversions that k8s.io/api does not ship.
func AddToScheme(s *runtime.Scheme) error {
	// The connect options are the core ones: clients send the same query parameters as to pods/exec.
	// Pod is listed only because the subresources' parent must have a kind in the group.
	s.AddKnownTypes(SchemeGroupVersion, &corev1.Pod{},
		&corev1.PodExecOptions{}, &corev1.PodAttachOptions{}, &corev1.PodPortForwardOptions{},
		&ExecSession{}, &ExecSessionList{}, &ExecLock{}, &ExecLockList{})
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	if err := s.AddFieldLabelConversionFunc(SchemeGroupVersion.WithKind("ExecSession"), execSessionFieldLabel); err != nil {
		return err
	}
	// core, apps and batch: the objects the kube route reads for kubectl.
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme} {
		if err := add(s); err != nil {
			return err
		}
	}
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	unversioned := schema.GroupVersion{Group: "", Version: "v1"}
	s.AddUnversionedTypes(unversioned,
		&metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})
	return addConversionFuncs(s)
}

// Resource qualifies a resource of the group.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

// execSessionFieldLabels are the fields execsessions can be selected by.
var execSessionFieldLabels = map[string]bool{"metadata.name": true, "metadata.namespace": true,
	"spec.user": true, "spec.pod": true, "spec.type": true, "status.node": true}

func execSessionFieldLabel(label, value string) (string, string, error) {
	if !execSessionFieldLabels[label] {
		return "", "", fmt.Errorf("field label not supported for execsessions: %s (use metadata.name, metadata.namespace, spec.user, spec.pod, spec.type or status.node)", label)
	}
	return label, value, nil
}
