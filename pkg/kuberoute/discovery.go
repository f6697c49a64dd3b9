package kuberoute

import (
	"net"
	"net/http"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// groupResources are what kubectl's RESTMapper needs to resolve exec, attach, port-forward and debug
// targets: pods with the three session subresources and ephemeralcontainers, and the TYPE/NAME kinds
// kubectl finds a pod for.
var groupResources = map[string][]metav1.APIResource{
	"v1": {
		{Name: "pods", SingularName: "pod", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"get", "list", "watch"},
			ShortNames: []string{"po"}, Categories: []string{"all"}},
		connect("pods/attach", "PodAttachOptions"),
		{Name: "pods/ephemeralcontainers", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"patch"}},
		connect("pods/exec", "PodExecOptions"),
		connect("pods/portforward", "PodPortForwardOptions"),
		workload("services", "service", "Service", "svc"),
		workload("replicationcontrollers", "replicationcontroller", "ReplicationController", "rc"),
	},
	"apps/v1": {
		workload("daemonsets", "daemonset", "DaemonSet", "ds"),
		workload("deployments", "deployment", "Deployment", "deploy"),
		workload("replicasets", "replicaset", "ReplicaSet", "rs"),
		workload("statefulsets", "statefulset", "StatefulSet", "sts"),
	},
	"batch/v1": {workload("jobs", "job", "Job", "")},
}

func connect(name, kind string) metav1.APIResource {
	return metav1.APIResource{Name: name, Namespaced: true, Kind: kind, Verbs: metav1.Verbs{"create", "get"}}
}

func workload(name, singular, kind, short string) metav1.APIResource {
	r := metav1.APIResource{Name: name, SingularName: singular, Namespaced: true, Kind: kind, Verbs: metav1.Verbs{"get"}}
	if short != "" {
		r.ShortNames = []string{short}
	}
	return r
}

// discovery answers the discovery documents of path, or nil when path is none. Aggregated-discovery
// Accept headers get the legacy documents, which clients fall back to.
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
		return &metav1.APIGroupList{Groups: []metav1.APIGroup{group("apps"), group("batch")}}
	case "/apis/apps", "/apis/batch":
		g := group(strings.TrimPrefix(path, "/apis/"))
		return &g
	}
	gv := strings.TrimPrefix(strings.TrimPrefix(path, "/api/"), "/apis/")
	if resources, ok := groupResources[gv]; ok && strings.HasPrefix(path, "/api") && (gv == "v1") == strings.HasPrefix(path, "/api/") {
		return &metav1.APIResourceList{GroupVersion: gv, APIResources: resources}
	}
	return nil
}

func group(name string) metav1.APIGroup {
	v := metav1.GroupVersionForDiscovery{GroupVersion: name + "/v1", Version: "v1"}
	return metav1.APIGroup{Name: name, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v}
}

func serverAddress(req *http.Request) string {
	if _, _, err := net.SplitHostPort(req.Host); err == nil {
		return req.Host
	}
	return net.JoinHostPort(req.Host, "443")
}
