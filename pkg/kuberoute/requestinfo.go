// Package kuberoute serves the route: under a prefix of exec-proxy's API group (api.RoutePrefix), a
// kubeconfig context whose sessions (pods/exec, pods/attach, pods/portforward, and kubectl debug's
// ephemeral containers) go through exec-proxy.
package kuberoute

import (
	"net/http"
	"strings"

	apirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// Strip returns the core path a route path stands for, under the route's prefix or its legacy one.
func Strip(path string) (string, bool) {
	if core, ok := cutPrefix(path, api.RoutePrefix); ok {
		return core, true
	}
	return cutPrefix(path, api.LegacyRoutePrefix)
}

func cutPrefix(path, prefix string) (string, bool) {
	if path == prefix {
		return "/", true
	}
	if rest, ok := strings.CutPrefix(path, prefix+"/"); ok {
		return "/" + rest, true
	}
	return "", false
}

// RequestInfoResolver resolves route paths as the core paths they stand for, so the handler chain
// authorizes them exactly as kube-apiserver would (get pods, create pods/exec, /api discovery).
type RequestInfoResolver struct {
	Delegate apirequest.RequestInfoResolver
}

func (r RequestInfoResolver) NewRequestInfo(req *http.Request) (*apirequest.RequestInfo, error) {
	core, ok := Strip(req.URL.Path)
	if ok {
		clone := *req
		u := *req.URL
		u.Path, u.RawPath = core, ""
		clone.URL = &u
		req = &clone
	}
	info, err := r.Delegate.NewRequestInfo(req)
	if err != nil {
		return nil, err
	}
	// Opening a session is create, whatever the method: WebSocket upgrades arrive as GET, and get on
	// pods/exec (common in read-only roles) must not be enough. Setting it here, not only in the
	// authorizer, makes refusals and audit events say create as well.
	if sessionaudit.IsSession(info) {
		info.Verb = "create"
	}
	return info, nil
}
