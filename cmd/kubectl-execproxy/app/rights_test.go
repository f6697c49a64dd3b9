package app

import (
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

func bypassRight(t *testing.T, name string) right {
	t.Helper()
	for _, r := range bypassRights {
		if r.String() == name {
			return r
		}
	}
	t.Fatalf("no bypassing right %q", name)
	return right{}
}

func rule(verbs, groups, resources []string, names ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: groups, Resources: resources, ResourceNames: names}
}

var (
	all  = []string{"*"}
	core = []string{""}
)

func TestRuleGrants(t *testing.T) {
	cases := []struct {
		name      string
		rule      rbacv1.PolicyRule
		right     string
		want      bool
		wantNames []string
	}{
		{"exact", rule([]string{"create"}, core, []string{"pods/exec"}), "create pods/exec", true, nil},
		{"verb *", rule(all, core, []string{"pods/exec"}), "create pods/exec", true, nil},
		{"other verb", rule([]string{"get"}, core, []string{"pods/exec"}), "create pods/exec", false, nil},
		{"verbs are case-sensitive", rule([]string{"Create"}, core, []string{"pods/exec"}), "create pods/exec", false, nil},
		{"get nodes/proxy", rule([]string{"get"}, core, []string{"nodes/proxy"}), "get nodes/proxy", true, nil},
		{"get is not create", rule([]string{"get"}, core, []string{"nodes/proxy"}), "create nodes/proxy", false, nil},
		{"apiGroups *", rule([]string{"create"}, all, []string{"deployments"}), "create deployments.apps", true, nil},
		{"core group is not apps", rule([]string{"create"}, core, []string{"deployments"}), "create deployments.apps", false, nil},
		{"other group", rule([]string{"create"}, []string{"extensions"}, []string{"deployments"}), "create deployments.apps", false, nil},
		{"apps is not core", rule([]string{"create"}, []string{"apps"}, []string{"pods"}), "create pods", false, nil},
		{"resources * takes subresources", rule(all, core, all), "create pods/exec", true, nil},
		{"*/exec", rule(all, core, []string{"*/exec"}), "create pods/exec", true, nil},
		{"*/exec is not attach", rule(all, core, []string{"*/exec"}), "create pods/attach", false, nil},
		{"*/proxy takes nodes and services", rule(all, core, []string{"*/proxy"}), "get nodes/proxy", true, nil},
		{"*/exec is not pods", rule(all, core, []string{"*/exec"}), "create pods", false, nil},
		{"a resource is not its subresources", rule(all, core, []string{"pods"}), "create pods/exec", false, nil},
		{"pods/* is no wildcard in RBAC", rule(all, core, []string{"pods/*"}), "create pods/exec", false, nil},
		{"subresource is not its resource", rule(all, core, []string{"pods/exec"}), "create pods", false, nil},
		{"resourceNames limit exec", rule([]string{"create"}, core, []string{"pods/exec"}, "web-0", "db-0"), "create pods/exec", true, []string{"web-0", "db-0"}},
		{"resourceNames never grant create", rule([]string{"create"}, core, []string{"pods"}, "web-0"), "create pods", false, nil},
		{"resourceNames limit impersonation", rule([]string{"impersonate"}, core, []string{"groups"}, breakGlass), "impersonate groups", true, []string{breakGlass}},
		{"impersonate users is not groups", rule([]string{"impersonate"}, core, []string{"users"}), "impersonate groups", false, nil},
		{"non-resource URLs", rbacv1.PolicyRule{Verbs: all, NonResourceURLs: all}, "get nodes/proxy", false, nil},
		{"empty", rbacv1.PolicyRule{}, "create pods", false, nil},
		{"create is not get of exec", rule([]string{"create"}, core, []string{"pods/exec"}), "get pods/exec", false, nil},
		{"get of exec", rule([]string{"get"}, core, []string{"pods/exec"}, "web-0"), "get pods/exec", true, []string{"web-0"}},
		{"one object: named", rule([]string{"create"}, core, []string{"serviceaccounts/token"}, "ci", execProxyAccount),
			"create serviceaccounts/token exec-proxy -n execproxy-system", true, nil},
		{"one object: others named", rule([]string{"create"}, core, []string{"serviceaccounts/token"}, "ci"),
			"create serviceaccounts/token exec-proxy -n execproxy-system", false, nil},
		{"one object: any", rule([]string{"create"}, core, []string{"serviceaccounts/token"}), "create serviceaccounts/token exec-proxy -n execproxy-system", true, nil},
		{"list by name", rule([]string{"list"}, core, []string{"secrets"}, execProxyKubeletClient),
			"list secrets exec-proxy-kubelet-client -n execproxy-system", true, nil},
		{"get is not watch", rule([]string{"get"}, core, []string{"secrets"}), "watch secrets exec-proxy-kubelet-client -n execproxy-system", false, nil},
		{"impersonate exec-proxy", rule([]string{"impersonate"}, core, []string{"serviceaccounts"}, execProxyAccount),
			"impersonate serviceaccounts exec-proxy -n execproxy-system", true, nil},
		{"bind limited to roles", rule([]string{"bind"}, []string{"rbac.authorization.k8s.io"}, []string{"clusterroles"}, "view"),
			"bind clusterroles.rbac.authorization.k8s.io", true, []string{"view"}},
		{"escalate is not bind", rule([]string{"escalate"}, []string{"rbac.authorization.k8s.io"}, []string{"roles"}), "bind roles.rbac.authorization.k8s.io", false, nil},
		{"rbac's group", rule([]string{"create"}, core, []string{"clusterrolebindings"}), "create clusterrolebindings.rbac.authorization.k8s.io", false, nil},
		{"approval", rule([]string{"update"}, []string{"certificates.k8s.io"}, []string{"certificatesigningrequests/approval"}),
			"update certificatesigningrequests/approval.certificates.k8s.io", true, nil},
		{"approval is not the CSR", rule([]string{"update"}, []string{"certificates.k8s.io"}, []string{"certificatesigningrequests"}),
			"update certificatesigningrequests/approval.certificates.k8s.io", false, nil},
		{"delete a policy binding", rule([]string{"delete"}, []string{"admissionregistration.k8s.io"}, []string{"validatingadmissionpolicybindings"}),
			"delete validatingadmissionpolicybindings.admissionregistration.k8s.io", true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, names := ruleGrants(tc.rule, bypassRight(t, tc.right))
			if got != tc.want || !slices.Equal(names, tc.wantNames) {
				t.Errorf("got %v %q, want %v %q", got, names, tc.want, tc.wantNames)
			}
		})
	}
}

func TestRolesGrant(t *testing.T) {
	exec := []string{"pods/exec"}
	cases := []struct {
		name      string
		rules     []rbacv1.PolicyRule
		want      bool
		wantNames []string
	}{
		{"none", nil, false, nil},
		{"names joined", []rbacv1.PolicyRule{rule(all, core, exec, "b", "a"), rule(all, core, exec, "a", "c")}, true, []string{"a", "b", "c"}},
		{"any name wins", []rbacv1.PolicyRule{rule(all, core, exec, "a"), rule(all, core, exec)}, true, nil},
		{"other rules skipped", []rbacv1.PolicyRule{rule(all, core, []string{"pods"}), rule(all, core, exec, "a")}, true, []string{"a"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, names := rolesGrant(tc.rules, bypassRight(t, "create pods/exec"))
			if got != tc.want || !slices.Equal(names, tc.wantNames) {
				t.Errorf("got %v %q, want %v %q", got, names, tc.want, tc.wantNames)
			}
		})
	}
}
