// Package execpath is the ways from client-go to the demo pod's container that the bench compares
// (kube-apiserver's pods/exec, the aggregated route, the kubelet itself, a relay to it), and the
// transfers and session starts it times on them.
package execpath

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
	"github.com/exec-proxy/exec-proxy/bench/internal/workload"
	"github.com/exec-proxy/exec-proxy/pkg/api"
)

// A Path is one way from client-go to the container: the same pod, container and client code.
type Path struct {
	Name string
	Cfg  *rest.Config
	// ExecURL is the exec request for cmd on this path.
	ExecURL func(cmd []string, stdin bool) string
	// WSProtocols, when set, replace client-go's WebSocket default (v5, which the kubelet lacks).
	WSProtocols []string
}

const (
	Namespace, Pod, Container = "demo", "demo", "main"
	KubeRoute                 = api.RoutePrefix
	// KubeletHost is node1's kubelet, where the demo pod runs (hack/cluster/manifests/pods.yaml).
	KubeletHost = "127.0.0.1:10250"
)

// SPDYPingPeriod is how often client-go's spdy.RoundTripperFor (kubectl port-forward's) pings a
// connection.
const SPDYPingPeriod = 5 * time.Second

// PortForwardURL is the demo pod's pods/portforward on an API server at host: kube-apiserver's
// own, or the route when host is the route's prefix.
func PortForwardURL(host string) string {
	return strings.TrimSuffix(host, "/") + "/api/v1/namespaces/" + Namespace + "/pods/" + Pod + "/portforward"
}

// KubeletPortForwardURL is the demo pod's portForward on a kubelet at host (or a relay to it).
func KubeletPortForwardURL(host string) string {
	return host + "/portForward/" + Namespace + "/" + Pod
}

// AdminKubeconfig is the file of admin's kubeconfig for path: "route" (kube-apiserver's aggregated
// route to exec-proxy) or "kube-apiserver" (its own pods/exec), what stock kubectl is given.
func AdminKubeconfig(cluster, path string) string {
	name := map[string]string{"route": "admin", "kube-apiserver": "admin-direct"}[path]
	return filepath.Join(cluster, "kubeconfig", name+".kubeconfig")
}

// LoadConfig is cluster/kubeconfig/name.kubeconfig without a client-side rate limit.
func LoadConfig(cluster, name string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(cluster, "kubeconfig", name+".kubeconfig"))
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", name, err)
	}
	cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limit: the server's is measured
	return cfg, nil
}

// API is kube-apiserver's pods/exec, or the same request through a kubeconfig whose server is the
// aggregated route.
func API(name string, cfg *rest.Config) Path {
	return Path{Name: name, Cfg: cfg, ExecURL: func(cmd []string, stdin bool) string {
		q := url.Values{"container": {Container}, "command": cmd, "stdout": {"true"}, "stderr": {"true"}}
		if stdin {
			q.Set("stdin", "true")
		}
		return strings.TrimSuffix(cfg.Host, "/") + "/api/v1/namespaces/" + Namespace + "/pods/" + Pod + "/exec?" + q.Encode()
	}}
}

// KubeletTLS is kube-apiserver's kubelet client certificate and the cluster's CA, as files.
func KubeletTLS(cluster string) rest.TLSClientConfig {
	pki := filepath.Join(cluster, "pki")
	return rest.TLSClientConfig{
		CAFile:   filepath.Join(pki, "ca.crt"),
		CertFile: filepath.Join(pki, "apiserver-kubelet-client.crt"), KeyFile: filepath.Join(pki, "apiserver-kubelet-client.key"),
	}
}

// Kubelet is the kubelet's own exec endpoint with kube-apiserver's kubelet client certificate:
// one TLS hop, no proxy.
func Kubelet(cluster string) Path {
	return KubeletAt("direct kubelet", "https://"+KubeletHost, KubeletTLS(cluster))
}

// KubeletAt is the kubelet's exec endpoint at host (the kubelet, or a relay to it), over tls.
func KubeletAt(name, host string, tls rest.TLSClientConfig) Path {
	cfg := &rest.Config{Host: host, QPS: -1, TLSClientConfig: tls}
	return Path{Name: name, Cfg: cfg, WSProtocols: []string{remotecommandconsts.StreamProtocolV4Name}, ExecURL: func(cmd []string, stdin bool) string {
		q := url.Values{"command": cmd, "output": {"1"}, "error": {"1"}}
		if stdin {
			q.Set("input", "1")
		}
		return cfg.Host + "/exec/" + Namespace + "/" + Pod + "/" + Container + "?" + q.Encode()
	}}
}

// Run execs cmd on p over protocol (spdy or websocket) with the given streams.
func (p Path) Run(ctx context.Context, protocol string, cmd []string, stdin io.Reader, stdout io.Writer) error {
	u := p.ExecURL(cmd, stdin != nil)
	var exec remotecommand.Executor
	var err error
	switch {
	case protocol == "websocket" && p.WSProtocols != nil:
		exec, err = remotecommand.NewWebSocketExecutorForProtocols(p.Cfg, "GET", u, p.WSProtocols...)
	case protocol == "websocket":
		exec, err = remotecommand.NewWebSocketExecutor(p.Cfg, "GET", u)
	default:
		parsed, perr := url.Parse(u)
		if perr != nil {
			return perr
		}
		exec, err = remotecommand.NewSPDYExecutor(p.Cfg, "POST", parsed)
	}
	if err != nil {
		return err
	}
	return exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: io.Discard})
}

// Download streams n bytes from the container to the client and returns the rate in MiB/s.
func Download(ctx context.Context, p Path, protocol string, n int64) (float64, error) {
	out := &workload.Counter{}
	start := time.Now()
	if err := p.Run(ctx, protocol, workload.StreamCommand(n), nil, out); err != nil {
		return 0, fmt.Errorf("%s %s download: %w", p.Name, protocol, err)
	}
	elapsed := time.Since(start)
	if out.Bytes() != n {
		return 0, fmt.Errorf("%s %s download: %d bytes arrived of %d", p.Name, protocol, out.Bytes(), n)
	}
	return float64(n) / (1 << 20) / elapsed.Seconds(), nil
}

// Upload streams n bytes of printable text (workload.Text) from the client into the container and
// returns the rate in MiB/s; the container counts what arrived. Text, as the download's, so that a
// recording of the input stores about what was sent: a NUL byte is six bytes of a recording's JSON.
func Upload(ctx context.Context, p Path, protocol string, n int64) (float64, error) {
	var out strings.Builder
	start := time.Now()
	if err := p.Run(ctx, protocol, []string{"wc", "-c"}, io.LimitReader(&workload.Text{}, n), &out); err != nil {
		return 0, fmt.Errorf("%s %s upload: %w", p.Name, protocol, err)
	}
	elapsed := time.Since(start)
	if got, _ := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64); got != n {
		return 0, fmt.Errorf("%s %s upload: the container got %q bytes of %d", p.Name, protocol, out.String(), n)
	}
	return float64(n) / (1 << 20) / elapsed.Seconds(), nil
}

// SetupTimes runs `true` k times, one after the other: each from the request to the exit code, in
// ms, sorted.
func SetupTimes(ctx context.Context, p Path, protocol string, k int) ([]float64, error) {
	var ms []float64
	for i := 0; i < k; i++ {
		start := time.Now()
		if err := p.Run(ctx, protocol, []string{"true"}, nil, io.Discard); err != nil {
			return nil, fmt.Errorf("%s %s exec true: %w", p.Name, protocol, err)
		}
		ms = append(ms, float64(time.Since(start).Microseconds())/1000)
	}
	sort.Float64s(ms)
	return ms, nil
}

// Setup is one path's round trip of exec -- true, in ms.
type Setup struct {
	Path     string  `json:"path"`
	Protocol string  `json:"protocol"`
	P50      float64 `json:"p50ms"`
	P99      float64 `json:"p99ms"`
	Count    int     `json:"sessions"`
}

// SummarizeSetup is the percentiles of ms, which it sorts.
func SummarizeSetup(path, protocol string, ms []float64) Setup {
	sort.Float64s(ms)
	return Setup{Path: path, Protocol: protocol, P50: stats.Percentile(ms, 50), P99: stats.Percentile(ms, 99), Count: len(ms)}
}
