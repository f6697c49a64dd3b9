package kuberoute

import (
	"net"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// discovery answers what kubectl's RESTMapper reads: core v1 with pods and the three
// subresources, and no groups. Aggregated-discovery Accept headers get the legacy documents,
// which clients fall back to.
func discovery(path string, req *http.Request) runtime.Object {
	switch path {
	case "/api":
		return &metav1.APIVersions{
			Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{
				{ClientCIDR: "0.0.0.0/0", ServerAddress: serverAddress(req)},
			},
		}
	case "/apis":
		return &metav1.APIGroupList{Groups: []metav1.APIGroup{}}
	}
	connect := func(name, kind string) metav1.APIResource {
		return metav1.APIResource{Name: name, Namespaced: true, Kind: kind, Verbs: metav1.Verbs{"create", "get"}}
	}
	return &metav1.APIResourceList{
		GroupVersion: "v1",
		APIResources: []metav1.APIResource{
			{Name: "pods", SingularName: "pod", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"get"},
				ShortNames: []string{"po"}, Categories: []string{"all"}},
			connect("pods/attach", "PodAttachOptions"),
			connect("pods/exec", "PodExecOptions"),
			connect("pods/portforward", "PodPortForwardOptions"),
		},
	}
}

func serverAddress(req *http.Request) string {
	if _, _, err := net.SplitHostPort(req.Host); err == nil {
		return req.Host
	}
	return net.JoinHostPort(req.Host, "443")
}
