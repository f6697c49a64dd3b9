// Package nodeconn finds where a pod's kubelet listens and connects to it with a verified identity.
package nodeconn

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// DefaultPreferredAddressTypes is kube-apiserver's default order for --kubelet-preferred-address-types.
var DefaultPreferredAddressTypes = []string{
	string(corev1.NodeHostName), string(corev1.NodeInternalDNS), string(corev1.NodeInternalIP),
	string(corev1.NodeExternalDNS), string(corev1.NodeExternalIP),
}

// Target is one pod container on one kubelet.
type Target struct {
	Pod       *corev1.Pod
	Container string
	Node      string
	// Address is host:port of the kubelet, chosen from the Node's status.
	Address string
	// KubeletWebSockets: the kubelet declares that it serves WebSocket v5 exec and attach, and
	// port-forward tunnelled over WebSocket, itself (see KubeletServesWebSockets).
	KubeletWebSockets bool
}

// ExtendWebSocketsToKubelet is the feature a kubelet (1.36 on, by default) lists in its Node's
// status.declaredFeatures when it translates WebSocket v5 to its runtime's SPDY itself. kube-apiserver
// passes such sessions to it untranslated (k8s.io/kubernetes pkg/registry/core/pod/rest).
const ExtendWebSocketsToKubelet = "ExtendWebSocketsToKubelet"

// KubeletServesWebSockets tells whether node's kubelet says it serves WebSocket sessions itself, as
// kube-apiserver 1.36 reads it. The kubelet writes it in its Node's status; so can whoever may update
// nodes/status, and a kubelet downgraded below 1.35 leaves it there. A false claim fails only that
// node's WebSocket sessions, as through kube-apiserver: the kubelet refuses the upgrade, the client
// gets its Status, and kubectl falls back to SPDY. The frames are read either way.
func KubeletServesWebSockets(node *corev1.Node) bool {
	return slices.Contains(node.Status.DeclaredFeatures, ExtendWebSocketsToKubelet)
}

// Resolver looks pods and nodes up in informer caches.
type Resolver struct {
	Pods                  corelisters.PodLister
	Nodes                 corelisters.NodeLister
	PreferredAddressTypes []string
	DefaultPort           int
}

// Pod returns the pod or a 404 Status.
func (r *Resolver) Pod(namespace, name string) (*corev1.Pod, error) {
	pod, err := r.Pods.Pods(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
	}
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("reading pod %s/%s: %w", namespace, name, err))
	}
	return pod, nil
}

// PodsMatching returns the namespace's pods that selector matches, from the cache.
func (r *Resolver) PodsMatching(namespace string, selector labels.Selector) ([]*corev1.Pod, error) {
	pods, err := r.Pods.Pods(namespace).List(selector)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("listing pods in %s: %w", namespace, err))
	}
	return pods, nil
}

// Resolve finds the kubelet of a running pod. With needContainer (exec, attach) the container is
// validated, or chosen when the pod has exactly one.
func (r *Resolver) Resolve(namespace, name, container string, needContainer bool) (*Target, error) {
	pod, err := r.Pod(namespace, name)
	if err != nil {
		return nil, err
	}
	if needContainer {
		if container, err = validateContainer(container, pod); err != nil {
			return nil, err
		}
	}
	if pod.Spec.NodeName == "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", name))
	}
	if pod.Status.Phase != corev1.PodRunning {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("pod %s is not running (phase %s): exec, attach and port-forward need a running pod", name, phaseOf(pod)))
	}
	node, err := r.node(pod.Spec.NodeName)
	if err != nil {
		return nil, err
	}
	addr, err := r.kubeletAddress(node)
	if err != nil {
		return nil, err
	}
	return &Target{Pod: pod, Container: container, Node: pod.Spec.NodeName, Address: addr, KubeletWebSockets: KubeletServesWebSockets(node)}, nil
}

// KubeletAddress chooses host:port for a node's kubelet, as kube-apiserver does.
func (r *Resolver) KubeletAddress(nodeName string) (string, error) {
	node, err := r.node(nodeName)
	if err != nil {
		return "", err
	}
	return r.kubeletAddress(node)
}

func (r *Resolver) node(name string) (*corev1.Node, error) {
	node, err := r.Nodes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("node %q not found: cannot reach the kubelet of its pods", name))
	}
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("reading node %s: %w", name, err))
	}
	return node, nil
}

func (r *Resolver) kubeletAddress(node *corev1.Node) (string, error) {
	host, ok := preferredAddress(node, r.PreferredAddressTypes)
	if !ok {
		return "", apierrors.NewServiceUnavailable(fmt.Sprintf(
			"node %q has no address of the preferred types %v (see --kubelet-preferred-address-types)", node.Name, r.PreferredAddressTypes))
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port <= 0 || port > 65535 {
		port = r.DefaultPort
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

func preferredAddress(node *corev1.Node, types []string) (string, bool) {
	for _, t := range types {
		for _, a := range node.Status.Addresses {
			if string(a.Type) == t && a.Address != "" {
				return a.Address, true
			}
		}
	}
	return "", false
}

func validateContainer(container string, pod *corev1.Pod) (string, error) {
	names := containerNames(pod)
	if container == "" {
		if len(pod.Spec.Containers) == 1 {
			return pod.Spec.Containers[0].Name, nil
		}
		return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", pod.Name, names))
	}
	for _, n := range names {
		if n == container {
			return container, nil
		}
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s, choose one of: %v", container, pod.Name, names))
}

// containerNames lists the containers one may exec into: regular, init and ephemeral ones.
func containerNames(pod *corev1.Pod) []string {
	var names []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		names = append(names, c.Name)
	}
	return names
}

func phaseOf(pod *corev1.Pod) corev1.PodPhase {
	if pod.Status.Phase == "" {
		return corev1.PodUnknown
	}
	return pod.Status.Phase
}

// URL is the kubelet's streaming endpoint for one session.
func (t *Target) URL(path string, query url.Values) *url.URL {
	return &url.URL{Scheme: "https", Host: t.Address, Path: path, RawQuery: query.Encode()}
}
