//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestKubeletWebSockets: exec-proxy passes a WebSocket session to the kubelet as it came when the
// kubelet serves WebSocket itself (a 1.36 kubelet declares ExtendWebSocketsToKubelet in its Node's
// status), and translates it to SPDY otherwise, as kube-apiserver does. Either way kubectl gets what
// kube-apiserver's own path gives it, and the audit record reads the same from the frames. In a
// cluster of one version it checks that version's half; `make e2e-versions` runs it on a 1.36
// control plane with a 1.36 kubelet on node1 and a 1.34 kubelet on node2.
func TestKubeletWebSockets(t *testing.T) {
	targets := []struct{ node, pod, container string }{{"127.0.0.1", "demo", "main"}, {"127.0.0.2", "echo", "echo"}}
	for _, tg := range targets {
		version := strings.TrimSpace(admin(t, "", "get", "node", tg.node, "-o", "jsonpath={.status.nodeInfo.kubeletVersion}"))
		declared := admin(t, "", "get", "node", tg.node, "-o", "jsonpath={.status.declaredFeatures}")
		serves := strings.Contains(declared, "ExtendWebSocketsToKubelet")
		// A 1.36 kubelet declares it by default and an older one cannot: not the Node's word alone.
		if want := minorOf(t, version) >= 36; serves != want {
			t.Fatalf("node %s: kubelet %s declares %q: serves WebSocket %v, want %v", tg.node, version, declared, serves, want)
		}
		proxyType := "translated_at_exec_proxy"
		if serves {
			proxyType = "proxied_to_kubelet"
		}
		for _, c := range []client{clients[1], clients[3]} { // kubectl 1.33 and 1.36, WebSocket v5
			t.Run(tg.node+"/"+version+"/"+c.name, func(t *testing.T) {
				m := marker(t)
				stdin := "in-" + m + "\n"
				args := []string{"exec", "-i", tg.pod, "-c", tg.container, "--", "sh", "-c", "cat; echo err-" + m + " >&2; exit 5"}
				key := `execproxy_websocket_streaming_requests_total{proxy_type="` + proxyType + `",subresource="exec"}` // labels as printed: sorted
				before, kubeletBefore := execProxyMetrics(t)[key], kubeletWebSocketRequests(t, tg.node, "exec")
				got := c.kubectl(t, viaExecProxy, "admin", stdin, args...)
				after, kubeletAfter := execProxyMetrics(t)[key], kubeletWebSocketRequests(t, tg.node, "exec")
				if after-before != 1 {
					t.Errorf("%s went from %v to %v, want one more", key, before, after)
				}
				// The kubelet counts the WebSocket sessions it serves itself.
				if wantKubelet := map[bool]float64{true: 1, false: 0}[serves]; kubeletAfter-kubeletBefore != wantKubelet {
					t.Errorf("the kubelet served %v WebSocket exec sessions itself, want %v", kubeletAfter-kubeletBefore, wantKubelet)
				}
				direct := c.kubectl(t, viaAPIServer, "admin", stdin, args...)
				got.stderr, direct.stderr = withoutDiscarded(t, got.stderr), withoutDiscarded(t, direct.stderr)
				if got != direct || got.code != 5 || got.stdout != stdin {
					t.Errorf("through exec-proxy %+v, on kube-apiserver's path %+v; want both exit 5 with stdout %q", got, direct, stdin)
				}
				end := sessionRecords(t, m, map[string]int{"start": 1, "end": 1})["end"][0].Annotations
				want := map[string]string{"exit-code": "5", "reason": "exited", "protocol": "v5.channel.k8s.io", "node": tg.node,
					"bytes-stdin": fmt.Sprint(len(stdin)), "bytes-stdout": fmt.Sprint(len(stdin)), "bytes-stderr": fmt.Sprint(len("err-" + m + "\n"))}
				for k, v := range want {
					if end[annotation+k] != v {
						t.Errorf("end record: %s = %q, want %q", k, end[annotation+k], v)
					}
				}
			})
		}
		if tg.pod != "demo" { // only demo serves a port
			continue
		}
		t.Run(tg.node+"/"+version+"/port-forward", func(t *testing.T) {
			key := `execproxy_websocket_streaming_requests_total{proxy_type="` + proxyType + `",subresource="portforward"}`
			before := execProxyMetrics(t)[key]
			s := clients[1].start(t, viaExecProxy, "admin", "port-forward", "pod/demo", ":8080")
			s.waitFor(t, "Forwarding from 127.0.0.1:")
			port := forwarding.FindStringSubmatch(s.output())[1]
			if body := httpGet(t, "http://127.0.0.1:"+port+"/index.html"); body != "hello from exec-proxy's demo pod\n" {
				t.Errorf("GET through port-forward = %q", body)
			}
			if after := execProxyMetrics(t)[key]; after-before != 1 {
				t.Errorf("%s went from %v to %v, want one more", key, before, after)
			}
		})
	}
}

// discarded is client-go's log line for a frame on a stream it has closed: seen now and then on
// kube-apiserver's own path (1.34's translator, kubectl 1.33), where stdout still comes after the
// stream's end. Logged, not compared.
var discarded = regexp.MustCompile(`(?m)^E\d{4} [0-9:.]+ +\d+ websocket\.go:\d+\] Unknown stream id \d+, discarding message\n`)

func withoutDiscarded(t *testing.T, stderr string) string {
	t.Helper()
	if lines := discarded.FindAllString(stderr, -1); len(lines) > 0 {
		t.Logf("kubectl discarded frames on closed streams: %q", lines)
	}
	return discarded.ReplaceAllString(stderr, "")
}

// apiServerMinor is kube-apiserver's minor version.
func apiServerMinor(t *testing.T) int {
	t.Helper()
	var v struct{ GitVersion string }
	if err := json.Unmarshal([]byte(admin(t, "", "get", "--raw", "/version")), &v); err != nil {
		t.Fatal(err)
	}
	return minorOf(t, v.GitVersion)
}

// minorOf is the minor version of a Kubernetes version such as v1.36.3.
func minorOf(t *testing.T, version string) int {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(version, "v"), ".")
	if len(parts) < 2 {
		t.Fatalf("version %q", version)
	}
	minor, err := strconv.Atoi(parts[1])
	if err != nil {
		t.Fatalf("version %q: %v", version, err)
	}
	return minor
}

// kubeletWebSocketRequests is the kubelet's own count of the WebSocket sessions of subresource it
// served itself (kubelet_websocket_streaming_requests_total, 1.36 on; 0 where there is none), read
// from the kubelet as admin (kube-apiserver's node proxy refuses loopback addresses).
func kubeletWebSocketRequests(t *testing.T, node, subresource string) float64 {
	t.Helper()
	port := strings.TrimSpace(admin(t, "", "get", "node", node, "-o", "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}"))
	return metricsAt(t, "the kubelet's", net.JoinHostPort(node, port))[`kubelet_websocket_streaming_requests_total{subresource="`+subresource+`"}`]
}
