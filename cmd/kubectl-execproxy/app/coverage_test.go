package app

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"
)

func vap(resources []string, ops ...admissionv1.OperationType) *admissionv1.ValidatingAdmissionPolicy {
	p := &admissionv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: denyDirectExec}}
	p.Spec.MatchConstraints = &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{namedRule(resources, ops...)}}
	return p
}

func namedRule(resources []string, ops ...admissionv1.OperationType) admissionv1.NamedRuleWithOperations {
	return admissionv1.NamedRuleWithOperations{RuleWithOperations: admissionv1.RuleWithOperations{Operations: ops, Rule: admissionv1.Rule{
		APIGroups: core, APIVersions: []string{"v1"}, Resources: resources}}}
}

func TestCloses(t *testing.T) {
	sessions := []string{"pods/exec", "pods/attach", "pods/portforward"}
	component := vap(sessions, admissionv1.Connect)
	with := func(p *admissionv1.ValidatingAdmissionPolicy, change func(*admissionv1.ValidatingAdmissionPolicySpec)) *admissionv1.ValidatingAdmissionPolicy {
		p = p.DeepCopy()
		change(&p.Spec)
		return p
	}
	changeRule := func(change func(*admissionv1.NamedRuleWithOperations)) *admissionv1.ValidatingAdmissionPolicy {
		return with(component, func(s *admissionv1.ValidatingAdmissionPolicySpec) { change(&s.MatchConstraints.ResourceRules[0]) })
	}
	bound := &admissionv1.ValidatingAdmissionPolicyBinding{}
	binding := func(m admissionv1.MatchResources) *admissionv1.ValidatingAdmissionPolicyBinding {
		return &admissionv1.ValidatingAdmissionPolicyBinding{Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{MatchResources: &m}}
	}
	attachOnly := binding(admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{namedRule([]string{"pods/attach"}, admissionv1.Connect)}})
	noExec := binding(admissionv1.MatchResources{ExcludeResourceRules: []admissionv1.NamedRuleWithOperations{namedRule([]string{"pods/exec"}, admissionv1.Connect)}})
	teamA := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}
	scope := func(s admissionv1.ScopeType) *admissionv1.ScopeType { return &s }
	cases := []struct {
		name     string
		policy   *admissionv1.ValidatingAdmissionPolicy
		bindings []*admissionv1.ValidatingAdmissionPolicyBinding
		right    string
		want     bool
	}{
		{"component: exec", component, nil, "create pods/exec", true},
		{"component: portforward", component, nil, "create pods/portforward", true},
		{"component: not ephemeral containers", component, nil, "patch pods/ephemeralcontainers", false},
		{"component: not pods/proxy", component, nil, "get pods/proxy", false},
		{"pods/* takes ephemeral containers", vap([]string{"pods/*"}, admissionv1.Update), nil, "patch pods/ephemeralcontainers", true},
		{"operation differs", vap([]string{"pods/*"}, admissionv1.Connect), nil, "patch pods/ephemeralcontainers", false},
		{"*/* and operation *", vap([]string{"*/*"}, admissionv1.OperationAll), nil, "get services/proxy", true},
		{"* is no subresource", vap(all, admissionv1.OperationAll), nil, "create pods/exec", false},
		{"* takes pods", vap(all, admissionv1.Create), nil, "create pods", true},
		{"never the kubelet's port", vap([]string{"*/*"}, admissionv1.OperationAll), nil, "get nodes/proxy", false},
		// The policy's own match constraints.
		{"policy excludes exec", with(component, func(s *admissionv1.ValidatingAdmissionPolicySpec) {
			s.MatchConstraints.ExcludeResourceRules = noExec.Spec.MatchResources.ExcludeResourceRules
		}), nil, "create pods/exec", false},
		{"policy excludes exec, not attach", with(component, func(s *admissionv1.ValidatingAdmissionPolicySpec) {
			s.MatchConstraints.ExcludeResourceRules = noExec.Spec.MatchResources.ExcludeResourceRules
		}), nil, "create pods/attach", true},
		{"policy excludes pods/* at any version", with(component, func(s *admissionv1.ValidatingAdmissionPolicySpec) {
			r := namedRule([]string{"pods/*"}, admissionv1.OperationAll)
			r.APIVersions = []string{"v2"}
			s.MatchConstraints.ExcludeResourceRules = []admissionv1.NamedRuleWithOperations{r}
		}), nil, "create pods/exec", false},
		{"policy excludes some pods by name", with(component, func(s *admissionv1.ValidatingAdmissionPolicySpec) {
			r := namedRule(sessions, admissionv1.Connect)
			r.ResourceNames = []string{"web-0"}
			s.MatchConstraints.ExcludeResourceRules = []admissionv1.NamedRuleWithOperations{r}
		}), nil, "create pods/exec", false},
		{"policy excludes another operation", with(component, func(s *admissionv1.ValidatingAdmissionPolicySpec) {
			s.MatchConstraints.ExcludeResourceRules = []admissionv1.NamedRuleWithOperations{namedRule([]string{"pods/*"}, admissionv1.Update)}
		}), nil, "create pods/exec", true},
		{"policy's namespace selector", with(component, func(s *admissionv1.ValidatingAdmissionPolicySpec) { s.MatchConstraints.NamespaceSelector = teamA }),
			nil, "create pods/exec", false},
		{"policy's object selector", with(component, func(s *admissionv1.ValidatingAdmissionPolicySpec) { s.MatchConstraints.ObjectSelector = teamA }),
			nil, "create pods/exec", false},
		{"policy's empty selectors take in all", with(component, func(s *admissionv1.ValidatingAdmissionPolicySpec) {
			s.MatchConstraints.NamespaceSelector, s.MatchConstraints.ObjectSelector = &metav1.LabelSelector{}, &metav1.LabelSelector{}
		}), nil, "create pods/exec", true},
		{"match conditions", with(component, func(s *admissionv1.ValidatingAdmissionPolicySpec) {
			s.MatchConditions = []admissionv1.MatchCondition{{Name: "not-ci", Expression: "request.userInfo.username != 'ci'"}}
		}), nil, "create pods/exec", false},
		{"params", with(component, func(s *admissionv1.ValidatingAdmissionPolicySpec) {
			s.ParamKind = &admissionv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"}
		}), nil, "create pods/exec", false},
		{"rule limited to names", changeRule(func(r *admissionv1.NamedRuleWithOperations) { r.ResourceNames = []string{"web-0"} }), nil, "create pods/exec", false},
		{"rule of another version", changeRule(func(r *admissionv1.NamedRuleWithOperations) { r.APIVersions = []string{"v1beta1"} }), nil, "create pods/exec", false},
		{"rule of every version", changeRule(func(r *admissionv1.NamedRuleWithOperations) { r.APIVersions = all }), nil, "create pods/exec", true},
		{"rule scope Namespaced", changeRule(func(r *admissionv1.NamedRuleWithOperations) { r.Scope = scope(admissionv1.NamespacedScope) }), nil, "create pods/exec", true},
		{"rule scope Cluster", changeRule(func(r *admissionv1.NamedRuleWithOperations) { r.Scope = scope(admissionv1.ClusterScope) }), nil, "create pods/exec", false},
		// The bindings' match resources.
		{"no binding", component, []*admissionv1.ValidatingAdmissionPolicyBinding{}, "create pods/exec", false},
		{"binding takes in attach only: exec", component, []*admissionv1.ValidatingAdmissionPolicyBinding{attachOnly}, "create pods/exec", false},
		{"binding takes in attach only: attach", component, []*admissionv1.ValidatingAdmissionPolicyBinding{attachOnly}, "create pods/attach", true},
		{"binding excludes exec: exec", component, []*admissionv1.ValidatingAdmissionPolicyBinding{noExec}, "create pods/exec", false},
		{"binding excludes exec: portforward", component, []*admissionv1.ValidatingAdmissionPolicyBinding{noExec}, "create pods/portforward", true},
		{"another binding takes exec in", component, []*admissionv1.ValidatingAdmissionPolicyBinding{noExec, attachOnly, bound}, "create pods/exec", true},
		{"binding's namespace selector", component, []*admissionv1.ValidatingAdmissionPolicyBinding{binding(admissionv1.MatchResources{NamespaceSelector: teamA})},
			"create pods/exec", false},
		{"binding's object selector", component, []*admissionv1.ValidatingAdmissionPolicyBinding{binding(admissionv1.MatchResources{ObjectSelector: teamA})},
			"create pods/exec", false},
		{"binding's empty match resources", component, []*admissionv1.ValidatingAdmissionPolicyBinding{binding(admissionv1.MatchResources{})}, "create pods/exec", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bindings := tc.bindings
			if bindings == nil {
				bindings = []*admissionv1.ValidatingAdmissionPolicyBinding{bound}
			}
			if got := closes([]enforced{{policy: tc.policy, bindings: bindings}}, bypassRight(t, tc.right)); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if closes(nil, bypassRight(t, "create pods/exec")) {
		t.Error("closed without deny-direct-exec")
	}
}

func TestSystemSubject(t *testing.T) {
	cases := []struct {
		subject rbacv1.Subject
		want    bool
	}{
		{rbacv1.Subject{Kind: "Group", Name: "system:masters"}, false},
		{rbacv1.Subject{Kind: "Group", Name: "system:authenticated"}, false},
		{rbacv1.Subject{Kind: "Group", Name: "system:serviceaccounts:team-a"}, false},
		{rbacv1.Subject{Kind: "Group", Name: "system:serviceaccounts:kube-system"}, true},
		{rbacv1.Subject{Kind: "Group", Name: "system:nodes"}, true},
		{rbacv1.Subject{Kind: "User", Name: "system:kube-controller-manager"}, true},
		{rbacv1.Subject{Kind: "User", Name: "system:serviceaccount:team-a:ci"}, false},
		{rbacv1.Subject{Kind: "User", Name: "system:serviceaccount:kube-system:ci"}, true},
		{rbacv1.Subject{Kind: "ServiceAccount", Namespace: "kube-system", Name: "replicaset-controller"}, true},
		{rbacv1.Subject{Kind: "ServiceAccount", Namespace: "ops", Name: "system:x"}, false},
		{rbacv1.Subject{Kind: "User", Name: "alice"}, false},
	}
	for _, tc := range cases {
		if got := systemSubject(tc.subject); got != tc.want {
			t.Errorf("%+v: got %v, want %v", tc.subject, got, tc.want)
		}
	}
}

// cluster is a small RBAC set; with deny, deploy/components/deny-direct-exec too.
func cluster(deny bool) []runtime.Object {
	meta := func(ns, name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }
	clusterRole := func(name string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
		return &rbacv1.ClusterRole{ObjectMeta: meta("", name), Rules: rules}
	}
	crb := func(name, role string, s rbacv1.Subject) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{ObjectMeta: meta("", name), Subjects: []rbacv1.Subject{s},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}}
	}
	rb := func(ns, name, kind, role string, s rbacv1.Subject) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{ObjectMeta: meta(ns, name), Subjects: []rbacv1.Subject{s},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role}}
	}
	objs := []runtime.Object{
		clusterRole("cluster-admin", rule(all, all, all), rbacv1.PolicyRule{Verbs: all, NonResourceURLs: all}),
		crb("cluster-admin", "cluster-admin", rbacv1.Subject{Kind: "Group", Name: "system:masters"}),
		clusterRole("node-proxier", rule([]string{"get"}, core, []string{"nodes/proxy"})),
		crb("alice-nodes", "node-proxier", rbacv1.Subject{Kind: "User", Name: "alice"}),
		// A RoleBinding grants nothing on nodes, which have no namespace.
		rb("team-a", "carol-nodes", "ClusterRole", "node-proxier", rbacv1.Subject{Kind: "User", Name: "carol"}),
		&rbacv1.Role{ObjectMeta: meta("team-a", "exec"), Rules: []rbacv1.PolicyRule{rule([]string{"create"}, core, []string{"pods/exec"})}},
		rb("team-a", "oncall-exec", "Role", "exec", rbacv1.Subject{Kind: "Group", Name: "team-a-oncall"}),
		// A service account without a namespace is the RoleBinding's.
		rb("team-a", "ci-exec", "Role", "exec", rbacv1.Subject{Kind: "ServiceAccount", Name: "ci"}),
		&rbacv1.Role{ObjectMeta: meta("team-a", "debug"), Rules: []rbacv1.PolicyRule{
			rule([]string{"patch"}, core, []string{"pods/ephemeralcontainers"}, "web-0")}},
		rb("team-a", "bob-debug", "Role", "debug", rbacv1.Subject{Kind: "User", Name: "bob"}),
		clusterRole("impersonator", rule([]string{"impersonate"}, core, []string{"users", "groups"})),
		crb("imp", "impersonator", rbacv1.Subject{Kind: "User", Name: "imp"}),
		clusterRole("everything", rule(all, all, all)),
		crb("robot-everything", "everything", rbacv1.Subject{Kind: "ServiceAccount", Namespace: "ops", Name: "robot"}),
		clusterRole("break-glass", rule([]string{"create"}, core, []string{"pods/exec", "pods/attach", "pods/portforward"})),
		crb("break-glass", "break-glass", rbacv1.Subject{Kind: "Group", Name: breakGlass}),
		clusterRole("system:controller:replicaset-controller", rule([]string{"create"}, core, []string{"pods"})),
		crb("system:controller:replicaset-controller", "system:controller:replicaset-controller",
			rbacv1.Subject{Kind: "ServiceAccount", Namespace: "kube-system", Name: "replicaset-controller"}),
		clusterRole("ws-exec", rule([]string{"get"}, core, []string{"pods/exec", "pods/attach"})),
		rb("team-a", "olga-ws", "ClusterRole", "ws-exec", rbacv1.Subject{Kind: "User", Name: "olga"}),
		// Becoming exec-proxy: a RoleBinding in its namespace, or none; not one in another namespace.
		&rbacv1.Role{ObjectMeta: meta(execProxyNamespace, "token"), Rules: []rbacv1.PolicyRule{
			rule([]string{"create"}, core, []string{"serviceaccounts/token"}, execProxyAccount)}},
		rb(execProxyNamespace, "tom-token", "Role", "token", rbacv1.Subject{Kind: "User", Name: "tom"}),
		&rbacv1.Role{ObjectMeta: meta(execProxyNamespace, "other-token"), Rules: []rbacv1.PolicyRule{
			rule([]string{"create"}, core, []string{"serviceaccounts/token"}, "other")}},
		rb(execProxyNamespace, "tina-token", "Role", "other-token", rbacv1.Subject{Kind: "User", Name: "tina"}),
		clusterRole("deployer", rule([]string{"create"}, []string{"apps"}, []string{"deployments"}),
			rule([]string{"impersonate"}, core, []string{"serviceaccounts"}, execProxyAccount)),
		rb(execProxyNamespace, "erin-deploy", "ClusterRole", "deployer", rbacv1.Subject{Kind: "User", Name: "erin"}),
		rb("team-a", "dave-deploy", "ClusterRole", "deployer", rbacv1.Subject{Kind: "User", Name: "dave"}),
		&rbacv1.Role{ObjectMeta: meta(execProxyNamespace, "cert-reader"), Rules: []rbacv1.PolicyRule{
			rule([]string{"get"}, core, []string{"secrets"}, execProxyKubeletClient)}},
		rb(execProxyNamespace, "gina-cert", "Role", "cert-reader", rbacv1.Subject{Kind: "User", Name: "gina"}),
		// Granting rights: cluster-wide, and in team-a, where only a namespace's requests are granted.
		clusterRole("rbac-admin", rule([]string{"bind", "escalate"}, []string{rbacv1.GroupName}, []string{"clusterroles", "roles"}),
			rule([]string{"create", "patch"}, []string{rbacv1.GroupName}, []string{"clusterrolebindings"})),
		crb("hank", "rbac-admin", rbacv1.Subject{Kind: "User", Name: "hank"}),
		rb("team-a", "ivy-rbac", "ClusterRole", "rbac-admin", rbacv1.Subject{Kind: "User", Name: "ivy"}),
		clusterRole("csr-approver", rule([]string{"update"}, []string{"certificates.k8s.io"}, []string{"certificatesigningrequests/approval"})),
		crb("kate", "csr-approver", rbacv1.Subject{Kind: "User", Name: "kate"}),
		clusterRole("vap-admin", rule([]string{"delete"}, []string{"admissionregistration.k8s.io"}, []string{"validatingadmissionpolicybindings"})),
		crb("leo", "vap-admin", rbacv1.Subject{Kind: "User", Name: "leo"}),
	}
	if deny {
		objs = append(objs, vap([]string{"pods/exec", "pods/attach", "pods/portforward"}, admissionv1.Connect),
			&admissionv1.ValidatingAdmissionPolicyBinding{ObjectMeta: meta("", denyDirectExec), Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName: denyDirectExec, ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny}}})
	}
	return objs
}

func TestCoverage(t *testing.T) {
	const (
		masters     = "Group system:masters cluster ClusterRoleBinding/cluster-admin (ClusterRole/cluster-admin)"
		mastersAuth = "Group system:masters cluster kube-apiserver (no binding needed)"
		robot       = "ServiceAccount ops/robot cluster ClusterRoleBinding/robot-everything (ClusterRole/everything)"
		glass       = "Group execproxy:break-glass cluster ClusterRoleBinding/break-glass (ClusterRole/break-glass)"
		oncall      = "Group team-a-oncall team-a RoleBinding/oncall-exec (Role/exec)"
		ci          = "ServiceAccount team-a/ci team-a RoleBinding/ci-exec (Role/exec)"
		alice       = "User alice cluster ClusterRoleBinding/alice-nodes (ClusterRole/node-proxier)"
		imp         = "User imp cluster ClusterRoleBinding/imp (ClusterRole/impersonator)"
		bob         = "User bob team-a RoleBinding/bob-debug (Role/debug) limited to names web-0"
		olga        = "User olga team-a RoleBinding/olga-ws (ClusterRole/ws-exec)"
		tom         = "User tom execproxy-system RoleBinding/tom-token (Role/token)"
		erin        = "User erin execproxy-system RoleBinding/erin-deploy (ClusterRole/deployer)"
		dave        = "User dave team-a RoleBinding/dave-deploy (ClusterRole/deployer)"
		gina        = "User gina execproxy-system RoleBinding/gina-cert (Role/cert-reader)"
		hank        = "User hank cluster ClusterRoleBinding/hank (ClusterRole/rbac-admin)"
		ivy         = "User ivy team-a RoleBinding/ivy-rbac (ClusterRole/rbac-admin)"
		kate        = "User kate cluster ClusterRoleBinding/kate (ClusterRole/csr-approver)"
		leo         = "User leo cluster ClusterRoleBinding/leo (ClusterRole/vap-admin)"
		rsc         = "ServiceAccount kube-system/replicaset-controller cluster ClusterRoleBinding/system:controller:replicaset-controller (ClusterRole/system:controller:replicaset-controller)"
		closed      = "closed by deny-direct-exec (break-glass group members still can)"
	)
	everyone := []string{masters, robot}
	cases := []struct {
		name       string
		deny, all  bool
		unbound    bool // without the cluster-admin binding
		narrowed   bool // deny-direct-exec's binding excludes pods/exec
		wantDeny   string
		wantStatus map[string]string
		want       map[string][]string
	}{
		{"without deny-direct-exec", false, false, false, false, "not installed", map[string]string{"create pods/exec": "open"}, map[string][]string{
			"create pods/exec":                append(slices.Clone(everyone), oncall, ci, glass),
			"create pods/attach":              append(slices.Clone(everyone), glass),
			"get nodes/proxy":                 append(slices.Clone(everyone), alice),
			"create nodes/proxy":              everyone,
			"patch pods/ephemeralcontainers":  append(slices.Clone(everyone), bob),
			"update pods/ephemeralcontainers": everyone,
			"create pods":                     everyone,
			"impersonate users":               append(slices.Clone(everyone), imp),
			"get services/proxy":              everyone,
			"get pods/exec":                   append(slices.Clone(everyone), olga),
			"get pods/portforward":            everyone,
			"create serviceaccounts/token exec-proxy -n execproxy-system":           append(slices.Clone(everyone), tom),
			"impersonate serviceaccounts exec-proxy -n execproxy-system":            append(slices.Clone(everyone), erin),
			"impersonate serviceaccounts":                                           append(slices.Clone(everyone), erin+" limited to names exec-proxy", dave+" limited to names exec-proxy"),
			"create pods -n execproxy-system":                                       everyone,
			"create deployments.apps -n execproxy-system":                           append(slices.Clone(everyone), erin),
			"create deployments.apps":                                               append(slices.Clone(everyone), erin, dave),
			"get secrets exec-proxy-kubelet-client -n execproxy-system":             append(slices.Clone(everyone), gina),
			"list secrets exec-proxy-kubelet-client -n execproxy-system":            everyone,
			"escalate clusterroles.rbac.authorization.k8s.io":                       append(slices.Clone(everyone), hank),
			"bind clusterroles.rbac.authorization.k8s.io":                           append(slices.Clone(everyone), hank, ivy),
			"escalate roles.rbac.authorization.k8s.io":                              append(slices.Clone(everyone), hank, ivy),
			"patch clusterrolebindings.rbac.authorization.k8s.io":                   append(slices.Clone(everyone), hank),
			"update clusterrolebindings.rbac.authorization.k8s.io":                  everyone,
			"update certificatesigningrequests/approval.certificates.k8s.io":        append(slices.Clone(everyone), kate),
			"delete validatingadmissionpolicybindings.admissionregistration.k8s.io": append(slices.Clone(everyone), leo),
			"update validatingadmissionpolicies.admissionregistration.k8s.io":       everyone,
		}},
		{"with deny-direct-exec", true, false, false, false, "installed", map[string]string{"create pods/exec": closed,
			"get nodes/proxy": "open (admission cannot close the kubelet's own port)", "patch pods/ephemeralcontainers": "open"}, map[string][]string{
			"create pods/exec":        {glass},
			"create pods/portforward": {glass},
			"get pods/exec":           {},
			"get nodes/proxy":         append(slices.Clone(everyone), alice),
			"get secrets exec-proxy-kubelet-client -n execproxy-system": append(slices.Clone(everyone), gina),
			"impersonate groups": append(slices.Clone(everyone), imp),
		}},
		{"system:masters needs no binding", false, false, true, false, "not installed", nil, map[string][]string{
			"create pods/exec":  {mastersAuth, robot, oncall, ci, glass},
			"get nodes/proxy":   {mastersAuth, robot, alice},
			"impersonate users": {mastersAuth, robot, imp},
		}},
		{"binding excludes exec", true, false, false, true, "installed", map[string]string{"create pods/exec": "open", "create pods/attach": closed},
			map[string][]string{"create pods/exec": append(slices.Clone(everyone), oncall, ci, glass), "create pods/attach": {glass}}},
		{"--all", true, true, false, false, "installed", nil, map[string][]string{
			"create pods/exec":                {glass},
			"create pods":                     append(slices.Clone(everyone), rsc),
			"create pods -n execproxy-system": append(slices.Clone(everyone), rsc),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			for name := range tc.want {
				bypassRight(t, name)
			}
			for name := range tc.wantStatus {
				bypassRight(t, name)
			}
			objs := cluster(tc.deny)
			if tc.unbound {
				objs = slices.DeleteFunc(objs, func(o runtime.Object) bool {
					b, ok := o.(*rbacv1.ClusterRoleBinding)
					return ok && b.Name == "cluster-admin"
				})
			}
			for _, o := range objs {
				if b, ok := o.(*admissionv1.ValidatingAdmissionPolicyBinding); ok && tc.narrowed {
					b.Spec.MatchResources = &admissionv1.MatchResources{
						ExcludeResourceRules: []admissionv1.NamedRuleWithOperations{namedRule([]string{"pods/exec"}, admissionv1.Connect)}}
				}
			}
			if err := runCoverage(context.Background(), &out, fake.NewClientset(objs...), tc.all, "json"); err != nil {
				t.Fatal(err)
			}
			var c Coverage
			if err := json.Unmarshal(out.Bytes(), &c); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(c.DenyDirectExec, tc.wantDeny) {
				t.Errorf("deny-direct-exec %q, want %q", c.DenyDirectExec, tc.wantDeny)
			}
			if len(c.Rights) != len(bypassRights) {
				t.Errorf("%d rights, want %d", len(c.Rights), len(bypassRights))
			}
			for _, rc := range c.Rights {
				if rc.Closed != (rc.Status == closed) {
					t.Errorf("%s: closed %v, status %q", rc.Right, rc.Closed, rc.Status)
				}
				if want, ok := tc.wantStatus[rc.Right]; ok && rc.Status != want {
					t.Errorf("%s: status %q, want %q", rc.Right, rc.Status, want)
				}
				want, ok := tc.want[rc.Right]
				if !ok {
					continue
				}
				var got []string
				for _, h := range rc.Holders {
					name := h.Name
					if h.Namespace != "" {
						name = h.Namespace + "/" + name
					}
					row := strings.Join([]string{h.Kind, name, h.Scope, h.Via}, " ")
					if h.Names != nil {
						row += " limited to names " + strings.Join(h.Names, ", ")
					}
					got = append(got, row)
				}
				slices.Sort(got)
				want = slices.Sorted(slices.Values(want))
				if !slices.Equal(got, want) {
					t.Errorf("%s:\n got  %q\n want %q", rc.Right, got, want)
				}
			}
		})
	}
}

func TestCoverageTable(t *testing.T) {
	var out bytes.Buffer
	if err := runCoverage(context.Background(), &out, fake.NewClientset(cluster(true)...), false, ""); err != nil {
		t.Fatal(err)
	}
	var lines []string // each line's words, as a row is read
	for _, line := range strings.Split(out.String(), "\n") {
		lines = append(lines, strings.Join(strings.Fields(line), " "))
	}
	for _, line := range []string{
		"deny-direct-exec: installed (ValidatingAdmissionPolicies execproxy-deny-direct-exec, each bound to deny)",
		"create pods/exec: closed by deny-direct-exec (break-glass group members still can)",
		"create pods/exec Group execproxy:break-glass cluster ClusterRoleBinding/break-glass (ClusterRole/break-glass)",
		"patch pods/ephemeralcontainers User bob team-a RoleBinding/bob-debug (Role/debug) limited to names web-0",
		"impersonate users: open (impersonation happens before admission, which sees the impersonated user)",
		"get pods/attach: closed by deny-direct-exec (break-glass group members still can)",
		"get secrets exec-proxy-kubelet-client -n execproxy-system: open (admission never sees a get, list or watch)",
		"get secrets exec-proxy-kubelet-client -n execproxy-system User gina execproxy-system RoleBinding/gina-cert (Role/cert-reader)",
		"create pods -n execproxy-system: open (deny-direct-exec has no policy for it)",
		"update certificatesigningrequests/approval.certificates.k8s.io User kate cluster ClusterRoleBinding/kate (ClusterRole/csr-approver)",
		"2 rows of Kubernetes' own subjects (system: users and groups, kube-system service accounts) hidden: --all shows them",
	} {
		if !slices.Contains(lines, line) {
			t.Errorf("no line %q in\n%s", line, out.String())
		}
	}
	if testing.Verbose() {
		t.Log("\n" + out.String())
	}
}

func TestCoverageForbidden(t *testing.T) {
	for _, resource := range []string{"clusterroles", "roles", "clusterrolebindings", "rolebindings", "validatingadmissionpolicies", "validatingadmissionpolicybindings"} {
		t.Run(resource, func(t *testing.T) {
			client := fake.NewClientset(cluster(true)...)
			client.PrependReactor("list", resource, func(clienttesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "", nil)
			})
			err := runCoverage(context.Background(), &bytes.Buffer{}, client, false, "")
			if err == nil || !strings.Contains(err.Error(), "listing "+resource+".") || !strings.Contains(err.Error(), "cluster-admin-like read rights") ||
				!apierrors.IsForbidden(err) {
				t.Errorf("got %v", err)
			}
		})
	}
}

func TestPrintCoverageNoHolders(t *testing.T) {
	cases := []struct {
		closed bool
		want   string
	}{
		{true, "  no binding names the break-glass group\n"},
		{false, "  no subject holds it\n"},
	}
	for _, tc := range cases {
		var out bytes.Buffer
		printCoverage(&out, &Coverage{Rights: []RightCoverage{{Right: "create pods/exec", Closed: tc.closed}}})
		if !strings.HasSuffix(out.String(), tc.want) || strings.Contains(out.String(), "RIGHT") {
			t.Errorf("closed %v: %q", tc.closed, out.String())
		}
	}
}

// TestCoverageOfTheComponent: with the policies deploy/components/deny-direct-exec ships, as
// written there, the rights they close are reported closed and the rest open.
func TestCoverageOfTheComponent(t *testing.T) {
	objs := cluster(false)
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "deploy", "components", "deny-direct-exec", "*.yaml"))
	if err != nil || len(files) < 2 {
		t.Fatalf("the component's files: %v %v", files, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			var head metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var obj runtime.Object
			switch head.Kind {
			case "ValidatingAdmissionPolicy":
				obj = &admissionv1.ValidatingAdmissionPolicy{}
			case "ValidatingAdmissionPolicyBinding":
				obj = &admissionv1.ValidatingAdmissionPolicyBinding{}
			default:
				continue
			}
			if err := yaml.Unmarshal([]byte(doc), obj); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			objs = append(objs, obj)
		}
	}
	c, err := coverage(context.Background(), fake.NewSimpleClientset(objs...), false)
	if err != nil {
		t.Fatal(err)
	}
	closed := map[string]bool{"create pods/exec": true, "create pods/attach": true, "create pods/portforward": true,
		"get pods/exec": true, "get pods/attach": true, "get pods/portforward": true,
		"update pods/ephemeralcontainers": true, "patch pods/ephemeralcontainers": true,
		"get pods/proxy": true, "create pods/proxy": true, "get services/proxy": true, "create services/proxy": true}
	seen := 0
	for _, r := range c.Rights {
		if r.Closed != closed[r.Right] {
			t.Errorf("%s: closed %v, want %v (%s)", r.Right, r.Closed, closed[r.Right], r.Status)
		}
		if closed[r.Right] {
			seen++
		}
	}
	if seen != len(closed) {
		t.Errorf("%d of the %d rights the component closes are in the report", seen, len(closed))
	}
}
