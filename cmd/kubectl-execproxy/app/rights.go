package app

import (
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
)

// exec-proxy's own objects (deploy/): whoever gets its service account or its kubelet client
// certificate gets around it. The component lets the service account through by this name.
const (
	execProxyNamespace     = "execproxy-system"
	execProxyAccount       = "exec-proxy"
	execProxyKubeletClient = "exec-proxy-kubelet-client" // the Secret of its kubelet client certificate
)

// right is one authorization request that runs a command or reaches a port without exec-proxy, or
// leads to one: becoming exec-proxy, granting oneself rights, turning the component off.
type right struct {
	verb, group, resource, subresource string
	namespace                          string // only the request in this namespace, if set: RoleBindings elsewhere grant nothing for it
	name                               string // only the request for this object, if set: resourceNames grant it if they name it
	clusterScoped                      bool   // the request has no namespace: a RoleBinding grants nothing for it, admission's scope is Cluster
	operation                          string // admission's, for the request through kube-apiserver: set where the component may close it
	unclosable                         string // why admission cannot close it, if it cannot
	why                                string
}

// String is the right as kubectl auth can-i reads it, with the object's name and namespace if set.
func (r right) String() string {
	s := r.verb + " " + r.resource
	if r.subresource != "" {
		s += "/" + r.subresource
	}
	if r.group != "" {
		s += "." + r.group
	}
	if r.name != "" {
		s += " " + r.name
	}
	if r.namespace != "" {
		s += " -n " + r.namespace
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
		wsGet      = "before Kubernetes 1.35 (AuthorizePodWebsocketUpgradeCreatePermission), kube-apiserver authorizes a WebSocket session as get: a session on its own path exec-proxy does not see"
		nodeProxy  = "the kubelet's API through kube-apiserver's node proxy, or the kubelet's port directly: exec into any pod on the node, unrecorded"
		ephemeral  = "kubectl debug: a new container in a running pod, then a native attach"
		newPod     = "a new pod, privileged or running any command: a new shell, not one in an existing pod"
		controller = "its controller creates pods that run any command: new pods, not existing ones"
		proxy      = "HTTP to a pod's ports: port-forward's equivalent"
		imperson   = "anyone's rights, the break-glass group's included"
		identity   = "exec-proxy's identity: its patch of pods/ephemeralcontainers in every pod, which the component lets through (a container running any command, unrecorded)"
		ownPod     = "a pod in exec-proxy's namespace, with its service account (ephemeral containers the component lets through) and its kubelet client certificate's Secret (exec on every kubelet)"
		certSecret = "the Secret " + execProxyKubeletClient + ": exec-proxy's kubelet client certificate, exec on every kubelet, unrecorded"
		escalate   = "a role with rights its author does not hold (escalate skips RBAC's escalation check): any right above"
		bind       = "a binding to a role whose rights its author does not hold (bind skips RBAC's escalation check): any right above, for itself with create of the binding"
		bindings   = "a ClusterRole bound to any subject, itself included: any right above with bind on the ClusterRole (else only rights it holds)"
		approval   = "an approved CSR: a client certificate in any group, the break-glass group's included (with approve on signers kubernetes.io/kube-apiserver-client, and create of the CSR)"
		component  = "turns deny-direct-exec off"
		// Why admission cannot close them.
		kubeletPort = "admission cannot close the kubelet's own port"
		authn       = "impersonation happens before admission, which sees the impersonated user"
		noPolicy    = "deny-direct-exec has no policy for it"
		read        = "admission never sees a get, list or watch"
		exempt      = "kube-apiserver runs no admission policy on admission policies and their bindings"
	)
	rs := []right{
		{verb: "create", resource: "pods", subresource: "exec", operation: "CONNECT", why: direct},
		{verb: "create", resource: "pods", subresource: "attach", operation: "CONNECT", why: direct},
		{verb: "create", resource: "pods", subresource: "portforward", operation: "CONNECT", why: direct},
		{verb: "get", resource: "pods", subresource: "exec", operation: "CONNECT", why: wsGet},
		{verb: "get", resource: "pods", subresource: "attach", operation: "CONNECT", why: wsGet},
		{verb: "get", resource: "pods", subresource: "portforward", operation: "CONNECT", why: wsGet},
		{verb: "get", resource: "nodes", subresource: "proxy", clusterScoped: true, operation: "CONNECT", unclosable: kubeletPort, why: nodeProxy},
		{verb: "create", resource: "nodes", subresource: "proxy", clusterScoped: true, operation: "CONNECT", unclosable: kubeletPort, why: nodeProxy},
		{verb: "update", resource: "pods", subresource: "ephemeralcontainers", operation: "UPDATE", why: ephemeral},
		{verb: "patch", resource: "pods", subresource: "ephemeralcontainers", operation: "UPDATE", why: ephemeral},
		{verb: "create", resource: "pods", operation: "CREATE", why: newPod},
	}
	controllers := [][2]string{{"apps", "deployments"}, {"apps", "daemonsets"}, {"apps", "statefulsets"},
		{"batch", "jobs"}, {"batch", "cronjobs"}, {"apps", "replicasets"}, {"", "replicationcontrollers"}}
	for _, gr := range controllers {
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
	// Becoming exec-proxy.
	rs = append(rs,
		right{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: execProxyNamespace, name: execProxyAccount,
			unclosable: noPolicy, why: identity},
		right{verb: "impersonate", resource: "serviceaccounts", namespace: execProxyNamespace, name: execProxyAccount, unclosable: authn, why: identity},
		right{verb: "create", resource: "pods", namespace: execProxyNamespace, unclosable: noPolicy, why: ownPod})
	for _, gr := range controllers {
		rs = append(rs, right{verb: "create", group: gr[0], resource: gr[1], namespace: execProxyNamespace, unclosable: noPolicy, why: ownPod})
	}
	for _, verb := range []string{"get", "list", "watch"} {
		rs = append(rs, right{verb: verb, resource: "secrets", namespace: execProxyNamespace, name: execProxyKubeletClient, unclosable: read, why: certSecret})
	}
	// Granting oneself any of the above. A RoleBinding's bind of a ClusterRole is checked in its namespace.
	rs = append(rs,
		right{verb: "escalate", group: rbacv1.GroupName, resource: "clusterroles", clusterScoped: true, unclosable: noPolicy, why: escalate},
		right{verb: "bind", group: rbacv1.GroupName, resource: "clusterroles", unclosable: noPolicy, why: bind},
		right{verb: "escalate", group: rbacv1.GroupName, resource: "roles", unclosable: noPolicy, why: escalate},
		right{verb: "bind", group: rbacv1.GroupName, resource: "roles", unclosable: noPolicy, why: bind})
	for _, verb := range []string{"create", "update", "patch"} {
		rs = append(rs, right{verb: verb, group: rbacv1.GroupName, resource: "clusterrolebindings", clusterScoped: true, unclosable: noPolicy, why: bindings})
	}
	rs = append(rs, right{verb: "update", group: "certificates.k8s.io", resource: "certificatesigningrequests", subresource: "approval",
		clusterScoped: true, unclosable: noPolicy, why: approval})
	for _, res := range []string{"validatingadmissionpolicies", "validatingadmissionpolicybindings"} {
		for _, verb := range []string{"update", "patch", "delete"} {
			rs = append(rs, right{verb: verb, group: "admissionregistration.k8s.io", resource: res, clusterScoped: true, unclosable: exempt, why: component})
		}
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
	if r.name != "" { // one object: the rule grants it all or nothing
		return slices.Contains(rule.ResourceNames, r.name), nil
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
