// Package kubeletws measures WebSocket v5 exec on the two kinds of kubelet: one that serves WebSocket
// itself (1.36, ExtendWebSocketsToKubelet: exec-proxy and kube-apiserver pass the session through)
// and one that does not (each translates it to SPDY). It needs a cluster with one node of each, as
// hack/bench.sh starts for it (the local cluster with K8S_VERSION=v1.36.3 NODE2_K8S_VERSION=v1.34.4).
package kubeletws

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
	"github.com/exec-proxy/exec-proxy/bench/internal/workload"
)

// Options are the part's, and what it takes from the bench.
type Options struct {
	Rounds int   // paired rounds, after one warm-up round
	Bytes  int64 // per download, a multiple of 65536
	// Config is the cluster's kubeconfig of that name, with no client-side rate limit.
	Config func(name string) (*rest.Config, error)
	// CPUSeconds is a cluster process's CPU time so far (exec-proxy, kube-apiserver).
	CPUSeconds func(process string) (float64, error)
	// ExecProxyMetrics is exec-proxy's own /metrics, read straight from it.
	ExecProxyMetrics func() ([]byte, error)
	Logf             func(format string, args ...any)
}

// The pods measured: one on each node of hack/cluster, in namespace demo.
var targets = []struct{ node, pod, container string }{{"127.0.0.1", "demo", "main"}, {"127.0.0.2", "echo", "echo"}}

// Result is the part's figures, one Node each.
type Result struct {
	Rounds int     `json:"rounds"` // counted, after one warm-up
	MiB    float64 `json:"mibPerDownload"`
	Nodes  []Node  `json:"nodes"`
}

// Node is WebSocket v5 downloads from a pod on one node, through exec-proxy's route and on
// kube-apiserver's own path, in the same rounds.
type Node struct {
	Node    string `json:"node"`
	Kubelet string `json:"kubeletVersion"`
	// ProxyType is how exec-proxy counted every route download (proxied_to_kubelet or
	// translated_at_exec_proxy); Declared, whether the Node lists ExtendWebSocketsToKubelet.
	ProxyType string `json:"proxyType"`
	Declared  bool   `json:"declaresExtendWebSocketsToKubelet"`
	// MiB/s of each path, and exec-proxy's ÷ kube-apiserver's in each round.
	ExecProxy stats.Interval `json:"execProxyMiBps"`
	APIServer stats.Interval `json:"apiServerMiBps"`
	Ratio     stats.Interval `json:"ratio"`
	// CPU seconds per GiB: exec-proxy's on the route; kube-apiserver's on each path.
	ExecProxyCPU          stats.Interval `json:"execProxyCPUSecondsPerGiB"`
	APIServerCPUOnRoute   stats.Interval `json:"apiServerCPUSecondsPerGiBOnRoute"`
	APIServerCPUOnItsPath stats.Interval `json:"apiServerCPUSecondsPerGiBOnItsPath"`
	// PerRound keeps every round's figures, so that a regression is visible.
	PerRound []Round `json:"perRound"`
}

// Round is one round's downloads on one node.
type Round struct {
	ExecProxyMiBps, APIServerMiBps                     float64
	ExecProxyCPU, APIServerCPUOnRoute, APIServerCPUOwn float64 // seconds per GiB
}

// Run measures both nodes over o.Rounds paired rounds; in each, the four downloads run in an order
// turned by one from the last round's, so that the machine's drift is shared.
func Run(ctx context.Context, o Options) (*Result, error) {
	route, err := o.Config("admin")
	if err != nil {
		return nil, err
	}
	direct, err := o.Config("admin-direct")
	if err != nil {
		return nil, err
	}
	res := &Result{Rounds: o.Rounds, MiB: float64(o.Bytes) / (1 << 20)}
	for _, tg := range targets {
		n, err := nodeOf(ctx, direct, tg.node)
		if err != nil {
			return nil, err
		}
		res.Nodes = append(res.Nodes, n)
	}
	type leg struct {
		node  int
		route bool
	}
	legs := []leg{{0, true}, {0, false}, {1, true}, {1, false}}
	for round := 0; round <= o.Rounds; round++ { // round 0 is the warm-up
		got := make([]Round, len(res.Nodes))
		for _, l := range stats.Turned(legs, round) {
			tg, cfg := targets[l.node], direct
			if l.route {
				cfg = route
			}
			var before map[string]float64
			if l.route {
				if before, err = o.proxyTypes(); err != nil {
					return nil, err
				}
			}
			rate, cpu, err := o.download(ctx, cfg, tg.pod, tg.container)
			if err != nil {
				return nil, fmt.Errorf("node %s, route %v: %w", tg.node, l.route, err)
			}
			if l.route {
				if err := res.Nodes[l.node].counted(o, before); err != nil {
					return nil, err
				}
			}
			r := &got[l.node]
			if l.route {
				r.ExecProxyMiBps, r.ExecProxyCPU, r.APIServerCPUOnRoute = rate, cpu["exec-proxy"], cpu["kube-apiserver"]
			} else {
				r.APIServerMiBps, r.APIServerCPUOwn = rate, cpu["kube-apiserver"]
			}
		}
		if round == 0 {
			continue
		}
		for i := range res.Nodes {
			res.Nodes[i].PerRound = append(res.Nodes[i].PerRound, got[i])
		}
		o.Logf("kubelet WebSocket round %d/%d: %s", round, o.Rounds, summary(got))
	}
	for i := range res.Nodes {
		res.Nodes[i].summarize()
	}
	return res, nil
}

func (n *Node) summarize() {
	pick := func(f func(Round) float64) stats.Interval {
		xs := make([]float64, len(n.PerRound))
		for i, r := range n.PerRound {
			xs[i] = f(r)
		}
		return stats.BootstrapMedian(xs, 10000)
	}
	n.ExecProxy = pick(func(r Round) float64 { return r.ExecProxyMiBps })
	n.APIServer = pick(func(r Round) float64 { return r.APIServerMiBps })
	n.Ratio = pick(func(r Round) float64 { return r.ExecProxyMiBps / r.APIServerMiBps })
	n.ExecProxyCPU = pick(func(r Round) float64 { return r.ExecProxyCPU })
	n.APIServerCPUOnRoute = pick(func(r Round) float64 { return r.APIServerCPUOnRoute })
	n.APIServerCPUOnItsPath = pick(func(r Round) float64 { return r.APIServerCPUOwn })
}

func summary(rs []Round) string {
	var parts []string
	for i, r := range rs {
		parts = append(parts, fmt.Sprintf("%s route %.0f MiB/s, kube-apiserver %.0f MiB/s", targets[i].node, r.ExecProxyMiBps, r.APIServerMiBps))
	}
	return strings.Join(parts, "; ")
}

// nodeOf reads how exec-proxy will reach the node's kubelet, from its Node as exec-proxy reads it.
func nodeOf(ctx context.Context, cfg *rest.Config, name string) (Node, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return Node{}, err
	}
	node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return Node{}, fmt.Errorf("reading node %s: %w", name, err)
	}
	return Node{Node: name, Kubelet: node.Status.NodeInfo.KubeletVersion,
		Declared: slices.Contains(node.Status.DeclaredFeatures, "ExtendWebSocketsToKubelet")}, nil
}

// execRequests matches execproxy_websocket_streaming_requests_total of exec (labels sorted, as printed).
var execRequests = regexp.MustCompile(`^execproxy_websocket_streaming_requests_total\{proxy_type="([a-z_]+)",subresource="exec"\} (\S+)$`)

// proxyTypes is exec-proxy's count of WebSocket exec requests by proxy_type.
func (o Options) proxyTypes() (map[string]float64, error) {
	text, err := o.ExecProxyMetrics()
	if err != nil {
		return nil, fmt.Errorf("reading exec-proxy's metrics: %w", err)
	}
	return parseProxyTypes(string(text))
}

func parseProxyTypes(text string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if m := execRequests.FindStringSubmatch(line); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				return nil, fmt.Errorf("exec-proxy's metrics: %q: %w", line, err)
			}
			out[m[1]] = v
		}
	}
	return out, nil
}

// counted notes how exec-proxy counted the route download just made to n (from its counts before):
// exactly one request, of the same proxy_type every time.
func (n *Node) counted(o Options, before map[string]float64) error {
	after, err := o.proxyTypes()
	if err != nil {
		return err
	}
	var types []string
	for typ, v := range after {
		for i := before[typ]; i < v; i++ {
			types = append(types, typ)
		}
	}
	if len(types) != 1 || (n.ProxyType != "" && n.ProxyType != types[0]) {
		return fmt.Errorf("node %s: exec-proxy counted %v for one download, and %q before", n.Node, types, n.ProxyType)
	}
	n.ProxyType = types[0]
	return nil
}

// download streams o.Bytes from the container over WebSocket v5 (client-go's, as kubectl ≥ 1.30)
// and returns the rate in MiB/s and each process's CPU seconds per GiB meanwhile.
func (o Options) download(ctx context.Context, cfg *rest.Config, pod, container string) (float64, map[string]float64, error) {
	cmd := workload.StreamCommand(o.Bytes)
	q := url.Values{"container": {container}, "command": cmd, "stdout": {"true"}, "stderr": {"true"}}
	u := strings.TrimSuffix(cfg.Host, "/") + "/api/v1/namespaces/demo/pods/" + pod + "/exec?" + q.Encode()
	exec, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u)
	if err != nil {
		return 0, nil, err
	}
	processes := []string{"exec-proxy", "kube-apiserver"}
	before := map[string]float64{}
	for _, p := range processes {
		if before[p], err = o.CPUSeconds(p); err != nil {
			return 0, nil, err
		}
	}
	out, errOut := &workload.Counter{}, &bytes.Buffer{}
	start := time.Now()
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: out, Stderr: errOut}); err != nil {
		return 0, nil, fmt.Errorf("download: %w (stderr %q)", err, errOut.String())
	}
	elapsed := time.Since(start)
	if out.Bytes() != o.Bytes {
		return 0, nil, fmt.Errorf("download: %d bytes arrived of %d", out.Bytes(), o.Bytes)
	}
	cpu := map[string]float64{}
	for _, p := range processes {
		after, err := o.CPUSeconds(p)
		if err != nil {
			return 0, nil, err
		}
		cpu[p] = (after - before[p]) / (float64(o.Bytes) / (1 << 30))
	}
	return float64(o.Bytes) / (1 << 20) / elapsed.Seconds(), cpu, nil
}

// Write writes r as results JSON to w and a Markdown table to table.
func Write(r *Result, w, table io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return err
	}
	fmt.Fprintf(table, "WebSocket v5 exec downloads of %.0f MiB (client-go, as kubectl ≥ 1.30), %d paired rounds after a warm-up; medians with 95%% bootstrap intervals.\n\n", r.MiB, r.Rounds)
	fmt.Fprintln(table, "| node | kubelet | exec-proxy counted | exec-proxy MiB/s | kube-apiserver MiB/s | exec-proxy ÷ kube-apiserver | exec-proxy CPU s/GiB | kube-apiserver CPU s/GiB on the route | on its own path |")
	fmt.Fprintln(table, "|---|---|---|---|---|---|---|---|---|")
	for _, n := range r.Nodes {
		fmt.Fprintf(table, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", n.Node, n.Kubelet, n.ProxyType,
			cell(n.ExecProxy, "%.0f"), cell(n.APIServer, "%.0f"), cell(n.Ratio, "%.2f"),
			cell(n.ExecProxyCPU, "%.2f"), cell(n.APIServerCPUOnRoute, "%.2f"), cell(n.APIServerCPUOnItsPath, "%.2f"))
	}
	return nil
}

func cell(i stats.Interval, format string) string {
	return fmt.Sprintf(format+" ("+format+"–"+format+")", i.Median, i.Low, i.High)
}
