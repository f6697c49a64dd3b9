package app

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	denyDirectExec = "execproxy-deny-direct-exec" // deploy/components/deny-direct-exec's policy and binding
	breakGlass     = "execproxy:break-glass"
	directPathOnly = "execproxy.dev/direct-path-only" // sessionadmission.DirectPathOnlyLabel
)

// Holder is a subject that holds a right through one binding.
type Holder struct {
	Kind      string   `json:"kind"`
	Name      string   `json:"name"`
	Namespace string   `json:"namespace,omitempty"` // a service account's
	Scope     string   `json:"scope"`               // "cluster", or the RoleBinding's namespace
	Via       string   `json:"via"`
	Names     []string `json:"resourceNames,omitempty"` // the right is limited to these objects
}

// RightCoverage is who holds one bypassing right.
type RightCoverage struct {
	Right   string   `json:"right"`
	Why     string   `json:"why"`
	Status  string   `json:"status"`
	Closed  bool     `json:"closed"` // holders are then only the break-glass group's
	Holders []Holder `json:"holders"`
}

// Coverage is the cluster's bypassing rights and their holders.
type Coverage struct {
	DenyDirectExec string          `json:"denyDirectExec"`
	Rights         []RightCoverage `json:"rights"`
	Hidden         int             `json:"hiddenSystemRows"` // rows of system subjects left out without --all
}

// binding is a ClusterRoleBinding or RoleBinding with its role's rules.
type binding struct {
	namespace, via string
	subjects       []rbacv1.Subject
	rules          []rbacv1.PolicyRule
}

// listFailed says which list was refused, and what the command needs.
func listFailed(what string, err error) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("listing %s: %w (coverage needs cluster-admin-like read rights: list on clusterroles, roles, "+
			"clusterrolebindings, rolebindings, validatingadmissionpolicies and validatingadmissionpolicybindings)", what, err)
	}
	return fmt.Errorf("listing %s: %w", what, err)
}

func readBindings(ctx context.Context, client kubernetes.Interface) ([]binding, error) {
	rbac := client.RbacV1()
	clusterRoles, err := rbac.ClusterRoles().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, listFailed("clusterroles.rbac.authorization.k8s.io", err)
	}
	roles, err := rbac.Roles("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, listFailed("roles.rbac.authorization.k8s.io", err)
	}
	crbs, err := rbac.ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, listFailed("clusterrolebindings.rbac.authorization.k8s.io", err)
	}
	rbs, err := rbac.RoleBindings("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, listFailed("rolebindings.rbac.authorization.k8s.io", err)
	}
	// An aggregated ClusterRole's rules are already its aggregation's result.
	clusterRules := map[string][]rbacv1.PolicyRule{}
	for _, r := range clusterRoles.Items {
		clusterRules[r.Name] = r.Rules
	}
	roleRules := map[[2]string][]rbacv1.PolicyRule{}
	for _, r := range roles.Items {
		roleRules[[2]string{r.Namespace, r.Name}] = r.Rules
	}
	var out []binding
	for _, b := range crbs.Items {
		if b.RoleRef.Kind == "ClusterRole" {
			out = append(out, binding{via: "ClusterRoleBinding/" + b.Name + " (ClusterRole/" + b.RoleRef.Name + ")",
				subjects: b.Subjects, rules: clusterRules[b.RoleRef.Name]})
		}
	}
	for _, b := range rbs.Items {
		rules := clusterRules[b.RoleRef.Name]
		if b.RoleRef.Kind == "Role" {
			rules = roleRules[[2]string{b.Namespace, b.RoleRef.Name}]
		}
		out = append(out, binding{namespace: b.Namespace, via: "RoleBinding/" + b.Name + " (" + b.RoleRef.Kind + "/" + b.RoleRef.Name + ")",
			subjects: b.Subjects, rules: rules})
	}
	return out, nil
}

// enforced is one of deploy/components/deny-direct-exec's policies with its bindings that deny.
type enforced struct {
	policy   *admissionv1.ValidatingAdmissionPolicy
	bindings []*admissionv1.ValidatingAdmissionPolicyBinding
}

// readDenyDirectExec returns deploy/components/deny-direct-exec's policies that are installed and
// bound to deny (execproxy-deny-direct-exec and the bypasses' execproxy-deny-*, each labelled
// execproxy.dev/direct-path-only), and what the report says of them.
func readDenyDirectExec(ctx context.Context, client kubernetes.Interface) ([]enforced, string, error) {
	adm := client.AdmissionregistrationV1()
	policies, err := adm.ValidatingAdmissionPolicies().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, "", listFailed("validatingadmissionpolicies.admissionregistration.k8s.io", err)
	}
	bindings, err := adm.ValidatingAdmissionPolicyBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, "", listFailed("validatingadmissionpolicybindings.admissionregistration.k8s.io", err)
	}
	var inForce []enforced
	var names []string
	for i := range policies.Items {
		p := &policies.Items[i]
		if !strings.HasPrefix(p.Name, "execproxy-deny-") || (p.Name != denyDirectExec && p.Labels[directPathOnly] != "true") {
			continue
		}
		e := enforced{policy: p}
		for j := range bindings.Items {
			if b := &bindings.Items[j]; b.Spec.PolicyName == p.Name && slices.Contains(b.Spec.ValidationActions, admissionv1.Deny) {
				e.bindings = append(e.bindings, b)
			}
		}
		if len(e.bindings) > 0 {
			inForce, names = append(inForce, e), append(names, p.Name)
		}
	}
	if !slices.ContainsFunc(inForce, func(e enforced) bool { return e.policy.Name == denyDirectExec }) {
		if slices.ContainsFunc(policies.Items, func(p admissionv1.ValidatingAdmissionPolicy) bool { return p.Name == denyDirectExec }) {
			return inForce, "not in force (ValidatingAdmissionPolicy " + denyDirectExec + " has no binding that denies)", nil
		}
		return inForce, "not installed (no ValidatingAdmissionPolicy " + denyDirectExec + ")", nil
	}
	return inForce, "installed (ValidatingAdmissionPolicies " + strings.Join(names, ", ") + ", each bound to deny)", nil
}

// closes is whether one of the policies, through one of its bindings, takes in every request of r
// through kube-apiserver.
func closes(policies []enforced, r right) bool {
	return slices.ContainsFunc(policies, func(e enforced) bool { return e.closes(r) })
}

// closes is whether the policy's match constraints and one of its bindings' match resources both take
// in every request of r, as k8s.io/apiserver's policy matcher would. Coverage must never report closed
// what is open, so whatever could leave some of r's requests out counts as not closing: a namespace or
// object selector that selects, match conditions, params (a binding's may be missing).
func (e enforced) closes(r right) bool {
	spec := e.policy.Spec
	if r.unclosable != "" || spec.MatchConstraints == nil || len(spec.MatchConditions) > 0 || spec.ParamKind != nil ||
		!takesAll(*spec.MatchConstraints, r) {
		return false
	}
	return slices.ContainsFunc(e.bindings, func(b *admissionv1.ValidatingAdmissionPolicyBinding) bool {
		return b.Spec.MatchResources == nil || takesAll(*b.Spec.MatchResources, r) // unset: all the policy's
	})
}

// takesAll is whether m takes in every request of r. No resourceRules constrain nothing (a
// binding's); the policy's are required.
func takesAll(m admissionv1.MatchResources, r right) bool {
	if selects(m.NamespaceSelector) || selects(m.ObjectSelector) ||
		slices.ContainsFunc(m.ExcludeResourceRules, func(rule admissionv1.NamedRuleWithOperations) bool { return ruleMatches(rule, r, true) }) {
		return false
	}
	return len(m.ResourceRules) == 0 ||
		slices.ContainsFunc(m.ResourceRules, func(rule admissionv1.NamedRuleWithOperations) bool { return ruleMatches(rule, r, false) })
}

// selects is whether a label selector leaves some objects out: an unset or empty one takes in all.
func selects(s *metav1.LabelSelector) bool {
	return s != nil && (len(s.MatchLabels) > 0 || len(s.MatchExpressions) > 0)
}

// ruleMatches is admission's rule match (k8s.io/apiserver's rules.Matcher) for r's request. A rule
// that takes in (excludes false) must take in every request of r: version v1, the version of every
// right (matchPolicy Equivalent's conversion from another is not counted), and no resourceNames. One
// that leaves out (excludes) does if it leaves out some: any version, any names.
func ruleMatches(rule admissionv1.NamedRuleWithOperations, r right, excludes bool) bool {
	ops := make([]string, len(rule.Operations))
	for i, op := range rule.Operations {
		ops[i] = string(op)
	}
	scope := rule.Scope == nil || *rule.Scope == admissionv1.AllScopes ||
		*rule.Scope == admissionv1.ClusterScope && r.clusterScoped || *rule.Scope == admissionv1.NamespacedScope && !r.clusterScoped
	resource := r.resource
	if r.subresource != "" {
		resource += "/" + r.subresource
	}
	// "*/*" is every resource and subresource, "*" every resource, "pods/*" pods and its subresources.
	if !matches(ops, r.operation, "*") || !matches(rule.APIGroups, r.group, "*") || !scope ||
		!(matches(rule.Resources, resource, "*/*") || r.subresource == "" && slices.Contains(rule.Resources, "*") ||
			r.subresource != "" && slices.Contains(rule.Resources, "*/"+r.subresource) || slices.Contains(rule.Resources, r.resource+"/*")) {
		return false
	}
	return excludes || matches(rule.APIVersions, "v1", "*") && len(rule.ResourceNames) == 0
}

// systemSubject is a Kubernetes component's subject, hidden without --all: a system: user or group
// or a kube-system service account. system:masters and the groups of people or of service accounts
// (system:authenticated, system:serviceaccounts:team-a) are not hidden: a right there is a gap.
func systemSubject(s rbacv1.Subject) bool {
	switch {
	case s.Kind == rbacv1.ServiceAccountKind:
		return s.Namespace == "kube-system"
	case s.Kind == rbacv1.GroupKind && slices.Contains([]string{"system:masters", "system:authenticated",
		"system:unauthenticated", "system:serviceaccounts"}, s.Name):
		return false
	case s.Kind == rbacv1.GroupKind && strings.HasPrefix(s.Name, "system:serviceaccounts:"):
		return s.Name == "system:serviceaccounts:kube-system"
	case s.Kind == rbacv1.UserKind && strings.HasPrefix(s.Name, "system:serviceaccount:"):
		return strings.HasPrefix(s.Name, "system:serviceaccount:kube-system:")
	}
	return strings.HasPrefix(s.Name, "system:")
}

// coverage reads the cluster's RBAC and deny-direct-exec and says who holds each bypassing right.
func coverage(ctx context.Context, client kubernetes.Interface, all bool) (*Coverage, error) {
	bindings, err := readBindings(ctx, client)
	if err != nil {
		return nil, err
	}
	policies, state, err := readDenyDirectExec(ctx, client)
	if err != nil {
		return nil, err
	}
	c := &Coverage{DenyDirectExec: state}
	for _, r := range bypassRights {
		rc, hidden := holders(r, bindings, closes(policies, r), all)
		c.Rights = append(c.Rights, rc)
		c.Hidden += hidden
	}
	return c, nil
}

// holders is who holds r through bindings, and how many system subjects it leaves out.
func holders(r right, bindings []binding, closed, all bool) (RightCoverage, int) {
	rc := RightCoverage{Right: r.String(), Why: r.why, Status: "open", Closed: closed, Holders: []Holder{}}
	switch {
	case closed:
		rc.Status = "closed by deny-direct-exec (break-glass group members still can)"
	case r.unclosable != "":
		rc.Status = "open (" + r.unclosable + ")"
	}
	hidden := 0
	for _, b := range bindings {
		ok, names := rolesGrant(b.rules, r)
		// A RoleBinding grants nothing outside its namespace: no nodes or users, no other namespace's objects.
		if !ok || b.namespace != "" && (r.clusterScoped || r.namespace != "" && b.namespace != r.namespace) {
			continue
		}
		for _, s := range b.subjects {
			if closed && (s.Kind != rbacv1.GroupKind || s.Name != breakGlass) {
				continue
			}
			if !all && systemSubject(s) {
				hidden++
				continue
			}
			h := Holder{Kind: s.Kind, Name: s.Name, Scope: cmp.Or(b.namespace, "cluster"), Via: b.via, Names: names}
			if s.Kind == rbacv1.ServiceAccountKind {
				h.Namespace = cmp.Or(s.Namespace, b.namespace) // as RBAC reads it
			}
			rc.Holders = append(rc.Holders, h)
		}
	}
	// kube-apiserver authorizes system:masters before RBAC: every right, bound or not.
	masters := func(h Holder) bool { return h.Kind == rbacv1.GroupKind && h.Name == "system:masters" }
	if !closed && !slices.ContainsFunc(rc.Holders, masters) {
		rc.Holders = append(rc.Holders, Holder{Kind: rbacv1.GroupKind, Name: "system:masters", Scope: "cluster", Via: "kube-apiserver (no binding needed)"})
	}
	slices.SortFunc(rc.Holders, func(a, b Holder) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name),
			strings.Compare(a.Scope, b.Scope), strings.Compare(a.Via, b.Via))
	})
	return rc, hidden
}

func printCoverage(out io.Writer, c *Coverage) {
	e := EscapeTerminal // every name comes from the cluster
	fmt.Fprintf(out, "deny-direct-exec: %s\n", e(c.DenyDirectExec))
	for _, rc := range c.Rights {
		fmt.Fprintf(out, "\n%s: %s\n  %s\n", rc.Right, rc.Status, rc.Why)
		if len(rc.Holders) == 0 && rc.Closed {
			fmt.Fprintln(out, "  no binding names the break-glass group")
			continue
		}
		if len(rc.Holders) == 0 {
			fmt.Fprintln(out, "  no subject holds it")
			continue
		}
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "RIGHT\tSUBJECT KIND\tSUBJECT\tSCOPE\tVIA")
		for _, h := range rc.Holders {
			name := h.Name
			if h.Kind == rbacv1.ServiceAccountKind {
				name = h.Namespace + "/" + h.Name
			}
			via := h.Via
			if h.Names != nil {
				via += " limited to names " + strings.Join(h.Names, ", ")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", rc.Right, e(h.Kind), e(name), e(h.Scope), e(via))
		}
		_ = w.Flush()
	}
	if c.Hidden > 0 {
		fmt.Fprintf(out, "\n%d rows of Kubernetes' own subjects (system: users and groups, kube-system service accounts) hidden: --all shows them\n", c.Hidden)
	}
}

func newCoverageCommand(g *globalOptions) *cobra.Command {
	var all bool
	var output string
	cmd := &cobra.Command{
		Use:   "coverage",
		Short: "List who can get around exec-proxy: the subjects holding each bypassing right in the cluster's RBAC",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" {
				return fmt.Errorf("--output %q: only json, or none for tables", output)
			}
			cfg, _, err := g.apiConfig()
			if err != nil {
				return err
			}
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return fmt.Errorf("client: %w", err)
			}
			return runCoverage(cmd.Context(), cmd.OutOrStdout(), client, all, output)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also Kubernetes' own subjects (system: users and groups, kube-system service accounts)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "json, or none for tables")
	return cmd
}

func runCoverage(ctx context.Context, out io.Writer, client kubernetes.Interface, all bool, output string) error {
	c, err := coverage(ctx, client, all)
	if err != nil {
		return err
	}
	if output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(c)
	}
	printCoverage(out, c)
	return nil
}
