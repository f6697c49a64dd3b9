package kubeletws

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestSummarize: each figure is the median over the rounds, and the ratio is taken within each
// round before its median, so that drift between rounds is not counted against either path.
func TestSummarize(t *testing.T) {
	cases := []struct {
		name       string
		rounds     []Round
		execProxy  float64
		apiServer  float64
		ratio      float64
		execCPUMed float64
	}{
		{"one round", []Round{{ExecProxyMiBps: 50, APIServerMiBps: 100, ExecProxyCPU: 3}}, 50, 100, 0.5, 3},
		// Medians of the paths are 60 and 60, but every round the route ran at half kube-apiserver's rate.
		{"drift between rounds", []Round{{ExecProxyMiBps: 30, APIServerMiBps: 60}, {ExecProxyMiBps: 60, APIServerMiBps: 120}, {ExecProxyMiBps: 90, APIServerMiBps: 30}},
			60, 60, 0.5, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := Node{PerRound: tc.rounds}
			n.summarize()
			if n.ExecProxy.Median != tc.execProxy || n.APIServer.Median != tc.apiServer || n.Ratio.Median != tc.ratio || n.ExecProxyCPU.Median != tc.execCPUMed {
				t.Errorf("medians: route %v, kube-apiserver %v, ratio %v, CPU %v; want %v %v %v %v",
					n.ExecProxy.Median, n.APIServer.Median, n.Ratio.Median, n.ExecProxyCPU.Median, tc.execProxy, tc.apiServer, tc.ratio, tc.execCPUMed)
			}
			if n.Ratio.Low > n.Ratio.Median || n.Ratio.High < n.Ratio.Median {
				t.Errorf("interval %+v does not hold its median", n.Ratio)
			}
		})
	}
}

// TestWrite: the JSON keeps every round, and the table has one row per node naming what exec-proxy did.
func TestWrite(t *testing.T) {
	r := &Result{Rounds: 1, MiB: 256, Nodes: []Node{
		{Node: "127.0.0.1", Kubelet: "v1.36.3", ProxyType: "proxied_to_kubelet", PerRound: []Round{{ExecProxyMiBps: 58, APIServerMiBps: 63}}},
		{Node: "127.0.0.2", Kubelet: "v1.34.4", ProxyType: "translated", PerRound: []Round{{ExecProxyMiBps: 73, APIServerMiBps: 63}}},
	}}
	for i := range r.Nodes {
		r.Nodes[i].summarize()
	}
	var js, table bytes.Buffer
	if err := Write(r, &js, &table); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Nodes) != 2 || len(back.Nodes[1].PerRound) != 1 || back.Nodes[1].PerRound[0].ExecProxyMiBps != 73 {
		t.Errorf("JSON does not keep the rounds: %v\n%s", err, js.String())
	}
	rows := 0
	for _, line := range strings.Split(table.String(), "\n") {
		if strings.HasPrefix(line, "| 127.0.0.") {
			rows++
		}
	}
	if rows != 2 || !strings.Contains(table.String(), "| proxied_to_kubelet | 58 (58–58) |") || !strings.Contains(table.String(), "| translated | 73 (73–73) |") {
		t.Errorf("table:\n%s", table.String())
	}
}

// TestParseProxyTypes reads the counter as exec-proxy prints it: labels in sorted order.
func TestParseProxyTypes(t *testing.T) {
	text := `# TYPE execproxy_websocket_streaming_requests_total counter
execproxy_websocket_streaming_requests_total{proxy_type="proxied_to_kubelet",subresource="exec"} 3
execproxy_websocket_streaming_requests_total{proxy_type="translated_at_exec_proxy",subresource="exec"} 11
execproxy_websocket_streaming_requests_total{proxy_type="translated_at_exec_proxy",subresource="portforward"} 5
`
	got, err := parseProxyTypes(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["proxied_to_kubelet"] != 3 || got["translated_at_exec_proxy"] != 11 {
		t.Errorf("got %v", got)
	}
}
