//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

// TestPrometheusScrapes: Debian's Prometheus scrapes exec-proxy as deploy/components/servicemonitor's
// ServiceMonitor says (https, the serving CA and server name, the bearer token of the ServiceAccount
// exec-proxy-metrics, which the component lets get /metrics), loads the PrometheusRule's groups and
// evaluates every rule without error, and a live query of execproxy_sessions_active sees a held
// session.
func TestPrometheusScrapes(t *testing.T) {
	monitor, access := serviceMonitorObjects(t)
	for _, doc := range access {
		admin(t, doc, "apply", "-f", "-")
		t.Cleanup(func() { admin(t, doc, "delete", "--ignore-not-found", "-f", "-") })
	}
	// kubectl create token stands in for the component's token Secret: the local cluster runs no
	// kube-controller-manager to fill it.
	token := strings.TrimSpace(admin(t, "", "-n", "execproxy-system", "create", "token", "exec-proxy-metrics", "--duration=1h"))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	rules := promRules(t, dir)

	var ep struct {
		Scheme, Path  string
		Authorization struct{ Type string }
		TLSConfig     struct{ ServerName string } `json:"tlsConfig"`
	}
	if err := json.Unmarshal(monitor, &ep); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
- job_name: exec-proxy
  scheme: %s
  metrics_path: %s
  authorization: {type: %s, credentials_file: %q}
  tls_config: {ca_file: %q, server_name: %s}
  static_configs: [{targets: [%q], labels: {namespace: execproxy-system}}]
`, rules, ep.Scheme, ep.Path, ep.Authorization.Type, filepath.Join(dir, "token"),
		filepath.Join(clusterDir(), "pki", "ca.crt"), ep.TLSConfig.ServerName, execProxyAddr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("prometheus.yml:\n%s", config)
	prom := startPrometheus(t, dir)

	eventually(t, 60*time.Second, "exec-proxy's target up", func() bool {
		var targets struct {
			ActiveTargets []struct{ Health, LastError string } `json:"activeTargets"`
		}
		promAPI(t, prom, "targets", nil, &targets)
		return len(targets.ActiveTargets) == 1 && targets.ActiveTargets[0].Health == "up"
	})

	conn, err := holdPortForward(apiserverConfig("admin", ""), api.RoutePrefix, "demo")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	eventually(t, 60*time.Second, "execproxy_sessions_active ≥ 1 in Prometheus", func() bool {
		var res struct {
			Result []struct{ Value [2]any } `json:"result"`
		}
		promAPI(t, prom, "query", url.Values{"query": {`execproxy_sessions_active{job="exec-proxy"}`}}, &res)
		return len(res.Result) == 1 && res.Result[0].Value[1] != "0"
	})

	var groups struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Name, Health, LastError string
				EvaluationTime          float64 `json:"evaluationTime"`
				LastEvaluation          string  `json:"lastEvaluation"`
			}
		}
	}
	eventually(t, 30*time.Second, "every rule evaluated", func() bool {
		promAPI(t, prom, "rules", nil, &groups)
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.LastEvaluation == "" || strings.HasPrefix(r.LastEvaluation, "0001") {
					return false
				}
			}
		}
		return len(groups.Groups) == 5
	})
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Health != "ok" {
				t.Errorf("rule %s/%s: health %q: %s", g.Name, r.Name, r.Health, r.LastError)
			}
		}
	}
}

// serviceMonitorObjects reads deploy/components/servicemonitor: the ServiceMonitor's endpoint, and
// the ServiceAccount, ClusterRole and ClusterRoleBinding that give its token /metrics.
func serviceMonitorObjects(t *testing.T) (endpoint json.RawMessage, access []string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "deploy", "components", "servicemonitor", "servicemonitor.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var o struct {
			Kind string
			Spec struct{ Endpoints []json.RawMessage }
		}
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}
		switch o.Kind {
		case "ServiceMonitor":
			endpoint = o.Spec.Endpoints[0]
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding":
			access = append(access, doc)
		}
	}
	if endpoint == nil || len(access) != 3 {
		t.Fatalf("servicemonitor.yaml: endpoint %s, %d access objects", endpoint, len(access))
	}
	return endpoint, access
}

// promRules writes the PrometheusRule's spec.groups to dir/rules.yaml, as rule_files take them.
func promRules(t *testing.T, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "deploy", "components", "monitoring", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rule struct{ Spec json.RawMessage }
	if err := yaml.Unmarshal(raw, &rule); err != nil {
		t.Fatal(err)
	}
	out, err := yaml.JSONToYAML(rule.Spec)
	path := filepath.Join(dir, "rules.yaml")
	if err == nil {
		err = os.WriteFile(path, out, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// startPrometheus runs /usr/bin/prometheus on dir/prometheus.yml, on a free loopback port with its
// storage in dir, until the test ends; it returns the address once Prometheus is ready.
func startPrometheus(t *testing.T, dir string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	logFile, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting prometheus (hack/install-deps.sh installs it): %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(logFile.Name())
			t.Logf("prometheus log:\n%s", log)
		}
		logFile.Close()
	})
	eventually(t, 60*time.Second, "prometheus ready", func() bool {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return addr
}

// promAPI gets Prometheus's /api/v1/<path> with query and decodes its data into out.
func promAPI(t *testing.T, addr, path string, query url.Values, out any) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v1/" + path + "?" + query.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status, Error string
		Data          json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Status != "success" {
		t.Fatalf("prometheus /api/v1/%s: %v %s", path, err, body.Error)
	}
	if err := json.Unmarshal(body.Data, out); err != nil {
		t.Fatal(err)
	}
}
