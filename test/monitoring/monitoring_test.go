//go:build monitoring

// Package monitoring tests deploy/components/monitoring with Debian's promtool ($PROMTOOL): the
// alert rules check and fire on their fixtures, the dashboard's queries parse, and both use only
// the metrics and labels exec-proxy registers.
package monitoring

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func component(name string) string {
	return filepath.Join(repoRoot(), "deploy", "components", "monitoring", name)
}

func promtool(t *testing.T, args ...string) string {
	t.Helper()
	bin := os.Getenv("PROMTOOL")
	if bin == "" {
		bin = "promtool"
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// ruleGroups is the PrometheusRule's spec.groups, as a Prometheus rule file.
type ruleGroups struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// writeRules writes the PrometheusRule's spec.groups to dir/rules.yaml, as rule_files take them.
func writeRules(t *testing.T, dir string) ruleGroups {
	t.Helper()
	raw, err := os.ReadFile(component("prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		Spec json.RawMessage `json:"spec"`
	}
	var groups ruleGroups
	if err := yaml.Unmarshal(raw, &rule); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rule.Spec, &groups); err != nil {
		t.Fatal(err)
	}
	out, err := yaml.JSONToYAML(rule.Spec)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "rules.yaml"), out, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return groups
}

// The five things the issue asks to be alerted on, by group.
var wantGroups = []string{"execproxy-audit", "execproxy-audit-webhook", "execproxy-kubelet-tls", "execproxy-session-caps", "execproxy-recordings"}

// TestAlertRules: promtool checks the rules, and its unit tests (testdata/alerts.yaml) make each
// alert fire and keep it quiet where it should be.
func TestAlertRules(t *testing.T) {
	dir := t.TempDir()
	groups := writeRules(t, dir)
	var names []string
	for _, g := range groups.Groups {
		names = append(names, g.Name)
	}
	if fmt.Sprint(names) != fmt.Sprint(wantGroups) {
		t.Errorf("groups %v, want %v", names, wantGroups)
	}
	t.Log(promtool(t, "check", "rules", filepath.Join(dir, "rules.yaml")))

	fixture, err := os.ReadFile(filepath.Join("testdata", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(fixture, &tests); err != nil {
		t.Fatal(err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if !fires[r.Alert] || !quiet[r.Alert] {
				t.Errorf("alert %s: testdata/alerts.yaml has a case where it fires: %v, where it does not: %v", r.Alert, fires[r.Alert], quiet[r.Alert])
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("alert %s has no %s", r.Alert, a)
				}
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts.yaml"), fixture, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log(promtool(t, "test", "rules", filepath.Join(dir, "alerts.yaml")))
}

// dashboard is the part of Grafana's dashboard model that the test checks.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(component("grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	return d
}

// grafanaVariables are what Grafana puts in place of the dashboard's variables before it queries.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$namespace", "execproxy-system")

// TestDashboard: the dashboard is well formed and each panel's queries parse, by promtool (as
// recording rules, Grafana's variables put in).
func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 39 {
		t.Errorf("uid %q, title %q, schemaVersion %d (Grafana 11 and 12 write 39 and more)", d.UID, d.Title, d.SchemaVersion)
	}
	ids := map[int]bool{}
	var rules strings.Builder
	rules.WriteString("groups:\n- name: dashboard\n  rules:\n")
	for _, p := range d.Panels {
		if ids[p.ID] || p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %d %q: repeated id or bad gridPos %+v", p.ID, p.Title, p.GridPos)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %d %q has no query", p.ID, p.Title)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			if q.RefID == "" || refs[q.RefID] || q.Expr == "" {
				t.Errorf("panel %d %q: query %q with refId %q", p.ID, p.Title, q.Expr, q.RefID)
			}
			refs[q.RefID] = true
			fmt.Fprintf(&rules, "  - record: panel_%d_%s\n    expr: %s\n", p.ID, q.RefID, strconv.Quote(grafanaVariables.Replace(q.Expr)))
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log(promtool(t, "check", "rules", path))
}

// TestOnlyRegisteredMetrics: every execproxy_ metric that an alert or a panel queries is one
// exec-proxy registers (read from its monitoring code), and every label matched on it is one of
// that metric's labels.
func TestOnlyRegisteredMetrics(t *testing.T) {
	registered := registeredMetrics(t)
	if len(registered) < 20 {
		t.Fatalf("found only %d metrics in exec-proxy's code: %v", len(registered), registered)
	}
	exprs := map[string]string{}
	for _, g := range writeRules(t, t.TempDir()).Groups {
		for _, r := range g.Rules {
			exprs["alert "+r.Alert] = r.Expr
		}
	}
	for _, p := range readDashboard(t).Panels {
		for _, q := range p.Targets {
			exprs[fmt.Sprintf("panel %q %s", p.Title, q.RefID)] = q.Expr
		}
	}
	for where, expr := range exprs {
		for _, err := range unknownMetrics(expr, registered) {
			t.Errorf("%s: %v", where, err)
		}
	}
}

var selector = regexp.MustCompile(`\b(execproxy_[a-z0-9_]+)(\{[^}]*\})?`)
var matcher = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)

// targetLabels are added by Prometheus's scrape (the ServiceMonitor's), not by exec-proxy.
var targetLabels = map[string]bool{"namespace": true, "pod": true, "job": true, "service": true, "instance": true, "endpoint": true, "container": true}

// unknownMetrics lists the metrics in expr that are not registered, and the labels matched on one
// that it does not have.
func unknownMetrics(expr string, registered map[string][]string) []error {
	var errs []error
	matches := selector.FindAllStringSubmatch(expr, -1)
	if len(matches) == 0 {
		errs = append(errs, fmt.Errorf("%q queries no execproxy_ metric", expr))
	}
	for _, m := range matches {
		labels, ok := registered[m[1]]
		if !ok {
			errs = append(errs, fmt.Errorf("%s is not a metric exec-proxy registers", m[1]))
			continue
		}
		for _, l := range matcher.FindAllStringSubmatch(m[2], -1) {
			if !targetLabels[l[1]] && !contains(labels, l[1]) {
				errs = append(errs, fmt.Errorf("%s has no label %s (it has %v)", m[1], l[1], labels))
			}
		}
	}
	return errs
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// registeredMetrics reads the metrics exec-proxy defines, from the k8s.io/component-base/metrics
// options (CounterOpts, GaugeOpts, HistogramOpts) in pkg/: each full name (a histogram's series
// names too) and its labels.
func registeredMetrics(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(filepath.Join(repoRoot(), "pkg"), func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		consts := stringConsts(f)
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			opts, ok := unaddr(call.Args[0]).(*ast.CompositeLit)
			if !ok {
				return true
			}
			sel, ok := opts.Type.(*ast.SelectorExpr)
			if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
				return true
			}
			parts := map[string]string{}
			for _, el := range opts.Elts {
				if kv, ok := el.(*ast.KeyValueExpr); ok {
					if k, ok := kv.Key.(*ast.Ident); ok {
						parts[k.Name] = stringOf(kv.Value, consts)
					}
				}
			}
			name := strings.Join(nonEmpty(parts["Namespace"], parts["Subsystem"], parts["Name"]), "_")
			var labels []string
			if len(call.Args) > 1 {
				if lit, ok := call.Args[1].(*ast.CompositeLit); ok {
					for _, el := range lit.Elts {
						labels = append(labels, stringOf(el, consts))
					}
				}
			}
			out[name] = labels
			if sel.Sel.Name == "HistogramOpts" {
				out[name+"_bucket"] = append(append([]string{}, labels...), "le")
				out[name+"_sum"], out[name+"_count"] = labels, labels
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func unaddr(e ast.Expr) ast.Expr {
	if u, ok := e.(*ast.UnaryExpr); ok && u.Op == token.AND {
		return u.X
	}
	return e
}

// stringConsts are the file's top-level string constants, such as namespace = "execproxy".
func stringConsts(f *ast.File) map[string]string {
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						out[n.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
		}
	}
	return out
}

func stringOf(e ast.Expr, consts map[string]string) string {
	switch v := e.(type) {
	case *ast.BasicLit:
		s, _ := strconv.Unquote(v.Value)
		return s
	case *ast.Ident:
		return consts[v.Name]
	}
	return ""
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
