package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"

	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/exec-proxy/exec-proxy/bench/internal/proc"
	"github.com/exec-proxy/exec-proxy/pkg/api"
)

// A path is one way from client-go to the container: the same pod, container and client code.
type path struct {
	name string
	cfg  *rest.Config
	// execURL is the exec request for cmd on this path.
	execURL func(cmd []string, stdin bool) string
	// cpu names the processes whose CPU a relayed GiB costs on this path.
	cpu []string
	// wsProtocols, when set, replace client-go's WebSocket default (v5, which the kubelet lacks).
	wsProtocols []string
}

const (
	namespace, pod, container = "demo", "demo", "main"
	kubeRoute                 = api.RoutePrefix
)

func loadConfig(cluster, name string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(cluster, "kubeconfig", name+".kubeconfig"))
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", name, err)
	}
	cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limit: the server's is measured
	return cfg, nil
}

// apiPath is kube-apiserver's pods/exec, or the same request through a kubeconfig whose server
// is the aggregated route.
func apiPath(name string, cfg *rest.Config, cpu ...string) path {
	return path{name: name, cfg: cfg, cpu: cpu, execURL: func(cmd []string, stdin bool) string {
		q := url.Values{"container": {container}, "command": cmd, "stdout": {"true"}, "stderr": {"true"}}
		if stdin {
			q.Set("stdin", "true")
		}
		return strings.TrimSuffix(cfg.Host, "/") + "/api/v1/namespaces/" + namespace + "/pods/" + pod + "/exec?" + q.Encode()
	}}
}

// kubeletPath is the kubelet's own exec endpoint with kube-apiserver's kubelet client certificate:
// one TLS hop, no proxy.
func kubeletPath(cluster string) path {
	pki := filepath.Join(cluster, "pki")
	cfg := &rest.Config{Host: "https://127.0.0.1:10250", QPS: -1, TLSClientConfig: rest.TLSClientConfig{
		CAFile:   filepath.Join(pki, "ca.crt"),
		CertFile: filepath.Join(pki, "apiserver-kubelet-client.crt"), KeyFile: filepath.Join(pki, "apiserver-kubelet-client.key"),
	}}
	return path{name: "direct kubelet", cfg: cfg, wsProtocols: []string{remotecommandconsts.StreamProtocolV4Name}, execURL: func(cmd []string, stdin bool) string {
		q := url.Values{"command": cmd, "output": {"1"}, "error": {"1"}}
		if stdin {
			q.Set("input", "1")
		}
		return cfg.Host + "/exec/" + namespace + "/" + pod + "/" + container + "?" + q.Encode()
	}}
}

// run execs cmd on p over protocol (spdy or websocket) with the given streams.
func (p path) run(ctx context.Context, protocol string, cmd []string, stdin io.Reader, stdout io.Writer) error {
	u := p.execURL(cmd, stdin != nil)
	var exec remotecommand.Executor
	var err error
	switch {
	case protocol == "websocket" && p.wsProtocols != nil:
		exec, err = remotecommand.NewWebSocketExecutorForProtocols(p.cfg, "GET", u, p.wsProtocols...)
	case protocol == "websocket":
		exec, err = remotecommand.NewWebSocketExecutor(p.cfg, "GET", u)
	default:
		parsed, perr := url.Parse(u)
		if perr != nil {
			return perr
		}
		exec, err = remotecommand.NewSPDYExecutor(p.cfg, "POST", parsed)
	}
	if err != nil {
		return err
	}
	return exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: io.Discard})
}

// cpuSeconds is the user+system CPU time of the process whose pid file is cluster/run/name.pid.
func cpuSeconds(cluster, name string) (float64, error) { return proc.CPUSeconds(cluster, name) }

// rssKiB is the resident set of the process whose pid file is cluster/run/name.pid.
func rssKiB(cluster, name string) (int64, error) { return proc.RSSKiB(cluster, name) }
