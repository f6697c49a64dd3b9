package app

import (
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
)

// right is one authorization request that runs a command or reaches a port without exec-proxy.
type right struct {
	verb, group, resource, subresource string
	clusterScoped                      bool   // the request has no namespace: a RoleBinding grants nothing for it, admission's scope is Cluster
	operation                          string // admission's, for the request through kube-apiserver
	unclosable                         string // why admission cannot close it, if it cannot
	why                                string
}

func (r right) String() string {
	s := r.verb + " " + r.resource
	if r.subresource != "" {
		s += "/" + r.subresource
	}
	if r.group != "" {
		s += "." + r.group
	}
	return s
}

// named is whether the request names an object: RBAC never grants a create of a new object by
// resourceNames, since its name is not known when it is authorized.
func (r right) named() bool { return r.verb != "create" || r.subresource != "" }

// bypassRights are the rights that get around exec-proxy, in the order they are printed.
var bypassRights = func() []right {
	const (
		direct     = "kube-apiserver's own path: a session exec-proxy does not see"
		nodeProxy  = "the kubelet's API through kube-apiserver's node proxy, or the kubelet's port directly: exec into any pod on the node, unrecorded"
		ephemeral  = "kubectl debug: a new container in a running pod, then a native attach"
		newPod     = "a new pod, privileged or running any command: a new shell, not one in an existing pod"
		controller = "its controller creates pods that run any command: new pods, not existing ones"
		proxy      = "HTTP to a pod's ports: port-forward's equivalent"
		imperson   = "anyone's rights, the break-glass group's included"
		// Why admission cannot close them.
		kubeletPort = "admission cannot close the kubelet's own port"
		authn       = "impersonation happens before admission, which sees the impersonated user"
	)
	rs := []right{
		{verb: "create", resource: "pods", subresource: "exec", operation: "CONNECT", why: direct},
		{verb: "create", resource: "pods", subresource: "attach", operation: "CONNECT", why: direct},
		{verb: "create", resource: "pods", subresource: "portforward", operation: "CONNECT", why: direct},
		{verb: "get", resource: "nodes", subresource: "proxy", clusterScoped: true, operation: "CONNECT", unclosable: kubeletPort, why: nodeProxy},
		{verb: "create", resource: "nodes", subresource: "proxy", clusterScoped: true, operation: "CONNECT", unclosable: kubeletPort, why: nodeProxy},
		{verb: "update", resource: "pods", subresource: "ephemeralcontainers", operation: "UPDATE", why: ephemeral},
		{verb: "patch", resource: "pods", subresource: "ephemeralcontainers", operation: "UPDATE", why: ephemeral},
		{verb: "create", resource: "pods", operation: "CREATE", why: newPod},
	}
	for _, gr := range [][2]string{{"apps", "deployments"}, {"apps", "daemonsets"}, {"apps", "statefulsets"},
		{"batch", "jobs"}, {"batch", "cronjobs"}, {"apps", "replicasets"}, {"", "replicationcontrollers"}} {
		rs = append(rs, right{verb: "create", group: gr[0], resource: gr[1], operation: "CREATE", why: controller})
	}
	for _, res := range []string{"pods", "services"} {
		for _, verb := range []string{"get", "create"} {
			rs = append(rs, right{verb: verb, resource: res, subresource: "proxy", operation: "CONNECT", why: proxy})
		}
	}
	for _, res := range []string{"users", "groups", "serviceaccounts"} {
		rs = append(rs, right{verb: "impersonate", resource: res, clusterScoped: res != "serviceaccounts", unclosable: authn, why: imperson})
	}
	return rs
}()

// ruleGrants is RBAC's rule match (k8s.io/kubernetes/pkg/apis/rbac/v1's VerbMatches, APIGroupMatches,
// ResourceMatches, ResourceNameMatches) for every object of r: whether rule grants r and, if only
// for some objects, their names. Like RBAC's, "*/exec" covers every resource's exec and "pods/*"
// is no wildcard.
func ruleGrants(rule rbacv1.PolicyRule, r right) (bool, []string) {
	resource := r.resource
	if r.subresource != "" {
		resource += "/" + r.subresource
	}
	if !matches(rule.Verbs, r.verb, rbacv1.VerbAll) || !matches(rule.APIGroups, r.group, rbacv1.APIGroupAll) ||
		!(matches(rule.Resources, resource, rbacv1.ResourceAll) ||
			r.subresource != "" && slices.Contains(rule.Resources, "*/"+r.subresource)) {
		return false, nil
	}
	if len(rule.ResourceNames) == 0 {
		return true, nil
	}
	if !r.named() {
		return false, nil
	}
	return true, rule.ResourceNames
}

func matches(set []string, want, all string) bool {
	return slices.Contains(set, all) || slices.Contains(set, want)
}

// rolesGrant is whether any of rules grants r, and the names it is limited to (nil: none).
func rolesGrant(rules []rbacv1.PolicyRule, r right) (bool, []string) {
	var granted bool
	var names []string
	for _, rule := range rules {
		ok, n := ruleGrants(rule, r)
		if ok && n == nil {
			return true, nil
		}
		if ok {
			granted = true
			names = append(names, n...)
		}
	}
	slices.Sort(names)
	return granted, slices.Compact(names)
}
