//go:build e2e

// Package e2e drives the real local cluster (hack/cluster/up.sh) with the real kubectl binaries:
// kube-apiserver's aggregation layer → exec-proxy → kubelet → containerd → runc.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clusterDir is where hack/cluster/up.sh keeps state, certificates and kubeconfigs.
func clusterDir() string {
	if d := os.Getenv("CLUSTER_DIR"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", ".cluster")
}

func kubeconfig(name string) string {
	return filepath.Join(clusterDir(), "kubeconfig", name+".kubeconfig")
}

// client is one kubectl binary with its protocol choice.
type client struct {
	name    string // used in subtest names
	version string
	env     []string
	// protocol exec-proxy must see for exec/attach: kubectl ≥ 1.30 tries WebSocket v5 first.
	protocol string
}

var clients = []client{
	{name: "kubectl1.28-spdy", version: "1.28", protocol: "v4.channel.k8s.io"},
	{name: "kubectl1.33-websocket", version: "1.33", protocol: "v5.channel.k8s.io"},
	{name: "kubectl1.33-spdy", version: "1.33", env: []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"}, protocol: "v4.channel.k8s.io"},
	{name: "kubectl1.36-websocket", version: "1.36", protocol: "v5.channel.k8s.io"}, // built from k8s.io/kubernetes
}

func (c client) path() string { return kubectlBinary(c.version) }

// kubectlBinary is the kubectl of version (such as "1.33"): kubectl.<version> in $KUBECTL_DIR, by
// default /usr/lib/google-cloud-sdk/bin, as for hack/cluster/env.sh; else the newest patch release
// of it that hack/build-k8s.sh built from the Go module (make e2e builds it).
func kubectlBinary(version string) string {
	dir := os.Getenv("KUBECTL_DIR")
	if dir == "" {
		dir = "/usr/lib/google-cloud-sdk/bin"
	}
	packaged := filepath.Join(dir, "kubectl."+version)
	if _, err := os.Stat(packaged); err == nil {
		return packaged
	}
	cache := os.Getenv("EXEC_PROXY_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "exec-proxy")
	}
	built, _ := filepath.Glob(filepath.Join(cache, "k8s", "v"+version+".*", "kubectl"))
	if len(built) == 0 {
		return packaged // not there: the test fails saying which
	}
	slices.SortFunc(built, func(a, b string) int { return patchOf(a) - patchOf(b) })
	return built[len(built)-1]
}

// patchOf is the patch number in a cache path's …/vMAJOR.MINOR.PATCH/kubectl.
func patchOf(path string) int {
	v := filepath.Base(filepath.Dir(path))
	p, _ := strconv.Atoi(v[strings.LastIndexByte(v, '.')+1:])
	return p
}

// route is how kubectl reaches the pod: through exec-proxy, or kube-apiserver's own pods/exec (baseline).
type route struct{ name, suffix string }

var (
	viaExecProxy = route{name: "exec-proxy", suffix: ""}
	viaAPIServer = route{name: "kube-apiserver", suffix: "-direct"}
)

// result is what kubectl printed and how it exited.
type result struct {
	stdout, stderr string
	code           int
}

// kubectl runs c as user over rt with stdin and args, bounded by a deadline so a hang fails the test.
func (c client) kubectl(t *testing.T, rt route, user string, stdin string, args ...string) result {
	t.Helper()
	res := c.run(t, kubeconfig(user+rt.suffix), stdin, args...)
	t.Logf("%s (%s %s) as %s via %s: %v → exit %d", c.path(), c.version, strings.Join(c.env, " "), user, rt.name, args, res.code)
	return res
}

// run runs c with the kubeconfig at path, stdin and args, bounded by a deadline so that a hang
// fails the test.
func (c client) run(t *testing.T, path, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.path(), append([]string{"--kubeconfig", path}, args...)...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	res := result{stdout: out.String(), stderr: errOut.String()}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s --kubeconfig %s %v did not finish in time; stderr: %s", c.path(), path, args, res.stderr)
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("running %s: %v", c.path(), err)
	}
	return res
}

// admin runs the cluster-admin's kubectl 1.33 against kube-apiserver directly, for setup.
func admin(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, clients[1].path(), append([]string{"--kubeconfig", kubeconfig("cluster-admin")}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// ensureNamespace makes namespace ns, if it is not there, and waits for its default service account,
// which kube-controller-manager makes (pods are refused until it has). Making the account too would
// race the controller: apply's create fails with AlreadyExists when the controller is first.
func ensureNamespace(t *testing.T, ns string) {
	t.Helper()
	admin(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n", "apply", "-f", "-")
	eventually(t, 60*time.Second, "the default service account of "+ns, func() bool {
		return admin(t, "", "-n", ns, "get", "serviceaccounts", "--ignore-not-found", "default", "-o", "name") != ""
	})
}

// eventually polls cond until it holds, and fails the test if the timeout passes first; never a
// fixed sleep.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !waitUntil(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// waitUntil polls cond until it holds or the timeout passes, and reports whether it held: for a
// caller that fails with its own message, or counts a finding instead of failing. cond may keep
// what it polled in the caller's variables for that message.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// signalAndWait sends sig to the local cluster's process name (as hack/cluster records it) and
// waits until it has exited as hack/cluster/env.sh's alive sees it, so a restart right after does
// not find it still running.
func signalAndWait(t *testing.T, name string, sig syscall.Signal, timeout time.Duration) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(clusterDir(), "run", name+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("signalling %s (%d): %v", name, pid, err)
	}
	eventually(t, timeout, name+" to exit", func() bool { return exited(t, pid) })
}

// exited: the process is gone, or a zombie (nothing may reap orphans in a container) whose other
// threads have exited too. A killed process's first thread can be a zombie while the others still
// exit, holding its ports and files.
func exited(t *testing.T, pid int) bool {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return true
	}
	if err != nil {
		t.Fatalf("reading the state of process %d: %v", pid, err)
	}
	var state string
	threads := 0
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 1 && f[0] == "State:":
			state = f[1]
		case len(f) > 1 && f[0] == "Threads:":
			threads, _ = strconv.Atoi(f[1])
		}
	}
	return (state == "Z" || state == "X") && threads <= 1
}

func TestMain(m *testing.M) {
	if _, err := os.Stat(kubeconfig("admin")); err != nil {
		println("the e2e tests need the local cluster: run hack/cluster/up.sh (or make e2e) first")
		os.Exit(1)
	}
	code := m.Run()
	printSummary(os.Stdout)
	// Checked over everything the suite did, so it runs after every test.
	if err := unpairedSessions(); err != nil {
		println("session audit:", err.Error())
		code = 1
	}
	if leaked := secretsIn(keyMaterial()); len(leaked) > 0 {
		println("private key material appears in", strings.Join(leaked, ", "))
		code = 1
	}
	os.Exit(code)
}

// keyMaterial is what must never be logged: the PEM bodies of every private key of the cluster.
func keyMaterial() []string {
	keys, _ := filepath.Glob(filepath.Join(clusterDir(), "pki", "*.key"))
	out := []string{"PRIVATE KEY"}
	for _, k := range keys {
		data, err := os.ReadFile(k)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if len(line) == 64 { // a full base64 line of the key
				out = append(out, line)
				break
			}
		}
	}
	return out
}

// secretsIn names the exec-proxy logs (its log, the session audit, recordings) holding any of secrets.
func secretsIn(secrets []string) []string {
	files := []string{filepath.Join(clusterDir(), "logs", "exec-proxy.log"), filepath.Join(clusterDir(), "logs", "exec-proxy-audit.log")}
	casts, _ := filepath.Glob(filepath.Join(clusterDir(), "recordings", "*.cast"))
	var leaked []string
	for _, f := range append(files, casts...) {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(string(data), s) {
				leaked = append(leaked, filepath.Base(f))
				break
			}
		}
	}
	return leaked
}
