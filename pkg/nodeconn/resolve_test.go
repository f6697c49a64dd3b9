package nodeconn

import (
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func resolver(t *testing.T, types []string, objs ...interface{}) *Resolver {
	t.Helper()
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	nodes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, o := range objs {
		store := pods
		if _, ok := o.(*corev1.Node); ok {
			store = nodes
		}
		if err := store.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	return &Resolver{Pods: listers.NewPodLister(pods), Nodes: listers.NewNodeLister(nodes), PreferredAddressTypes: types, DefaultPort: 10250}
}

func pod(name, node string, phase corev1.PodPhase, containers ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
	}
	return p
}

func node(name string, port int32, addrs ...corev1.NodeAddress) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Addresses: addrs,
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: port}}}}
}

func addr(t corev1.NodeAddressType, a string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: t, Address: a}
}

func TestKubeletAddress(t *testing.T) {
	all := node("n", 10350, addr(corev1.NodeExternalIP, "1.2.3.4"), addr(corev1.NodeInternalIP, "10.0.0.1"), addr(corev1.NodeHostName, "n.local"))
	cases := []struct {
		name  string
		types []string
		node  *corev1.Node
		want  string
	}{
		{"kube-apiserver's default order takes Hostname first", DefaultPreferredAddressTypes, all, "n.local:10350"},
		{"configured order", []string{"InternalIP", "Hostname"}, all, "10.0.0.1:10350"},
		{"falls through missing types", []string{"InternalDNS", "ExternalIP"}, all, "1.2.3.4:10350"},
		{"empty address skipped", []string{"InternalIP", "ExternalIP"}, node("n", 10350, addr(corev1.NodeInternalIP, ""), addr(corev1.NodeExternalIP, "1.2.3.4")), "1.2.3.4:10350"},
		{"no published port: --kubelet-port", []string{"InternalIP"}, node("n", 0, addr(corev1.NodeInternalIP, "10.0.0.1")), "10.0.0.1:10250"},
		{"IPv6 bracketed", []string{"InternalIP"}, node("n", 10250, addr(corev1.NodeInternalIP, "fd00::1")), "[fd00::1]:10250"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolver(t, tc.types, tc.node).KubeletAddress("n")
			if err != nil || got != tc.want {
				t.Errorf("got %q %v, want %q", got, err, tc.want)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	r := resolver(t, []string{"InternalIP"},
		pod("two", "n1", corev1.PodRunning, "a", "b"),
		pod("one", "n1", corev1.PodRunning, "only"),
		pod("unscheduled", "", corev1.PodPending, "a"),
		pod("pending", "n1", corev1.PodPending, "a"),
		pod("succeeded", "n1", corev1.PodSucceeded, "a"),
		pod("on-missing", "gone", corev1.PodRunning, "a"),
		pod("on-addressless", "bare", corev1.PodRunning, "a"),
		node("n1", 10250, addr(corev1.NodeInternalIP, "10.0.0.1")),
		node("bare", 10250, addr(corev1.NodeHostName, "bare")),
	)
	cases := []struct {
		name, pod, container string
		needContainer        bool
		code                 int32
		message              string
	}{
		{"pod not found", "nope", "", true, http.StatusNotFound, `pods "nope" not found`},
		{"container not found", "two", "c", true, http.StatusBadRequest, "container c is not valid for pod two, choose one of: [a b]"},
		{"container needed", "two", "", true, http.StatusBadRequest, "a container name must be specified for pod two, choose one of: [a b]"},
		{"no host", "unscheduled", "a", true, http.StatusBadRequest, "pod unscheduled does not have a host assigned"},
		{"not running", "pending", "a", true, http.StatusBadRequest, "pod pending is not running (phase Pending)"},
		{"finished", "succeeded", "a", true, http.StatusBadRequest, "pod succeeded is not running (phase Succeeded)"},
		{"node not found", "on-missing", "a", true, http.StatusServiceUnavailable, `node "gone" not found`},
		{"no preferred address", "on-addressless", "a", true, http.StatusServiceUnavailable, `node "bare" has no address of the preferred types [InternalIP]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Resolve("ns", tc.pod, tc.container, tc.needContainer)
			status, ok := err.(apierrors.APIStatus)
			if !ok {
				t.Fatalf("got %v, want a Status", err)
			}
			if status.Status().Code != tc.code || !strings.Contains(status.Status().Message, tc.message) {
				t.Errorf("got %d %q, want %d %q", status.Status().Code, status.Status().Message, tc.code, tc.message)
			}
		})
	}
	t.Run("single container chosen", func(t *testing.T) {
		target, err := r.Resolve("ns", "one", "", true)
		if err != nil || target.Container != "only" || target.Address != "10.0.0.1:10250" || target.Node != "n1" {
			t.Errorf("got %+v %v", target, err)
		}
	})
	t.Run("port-forward needs no container", func(t *testing.T) {
		if target, err := r.Resolve("ns", "two", "", false); err != nil || target.Container != "" {
			t.Errorf("got %+v %v", target, err)
		}
	})
}

// TestKubeletWebSockets: a session is passed to the kubelet untranslated only when its Node says
// the kubelet serves WebSocket itself, as kube-apiserver decides it.
func TestKubeletWebSockets(t *testing.T) {
	cases := []struct {
		name     string
		declared []string
		want     bool
	}{
		{"a 1.36 kubelet", []string{"ExtendWebSocketsToKubelet", "InPlacePodVerticalScaling"}, true},
		{"declares other features", []string{"InPlacePodVerticalScaling"}, false},
		{"declares none (before 1.35, or the gate off)", nil, false},
		{"case differs", []string{"extendwebsocketstokubelet"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := node("n", 10250, addr(corev1.NodeInternalIP, "10.0.0.1"))
			n.Status.DeclaredFeatures = tc.declared
			target, err := resolver(t, DefaultPreferredAddressTypes, n, pod("p", "n", corev1.PodRunning, "c")).Resolve("ns", "p", "", true)
			if err != nil {
				t.Fatal(err)
			}
			if target.KubeletWebSockets != tc.want {
				t.Errorf("KubeletWebSockets = %v, want %v", target.KubeletWebSockets, tc.want)
			}
		})
	}
}
