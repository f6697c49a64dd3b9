//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// restartExecProxy runs exec-proxy with extra flags (later flags win) for the rest of the test,
// and brings back the usual ones when it ends.
func restartExecProxy(t *testing.T, extra ...string) {
	t.Helper()
	restartExecProxyEnv(t, execProxyEnv, extra...)
}

// execProxyEnv is the environment hack/cluster/exec-proxy.sh last started exec-proxy with.
var execProxyEnv []string

// restartExecProxyEnv is restartExecProxy with env for hack/cluster/exec-proxy.sh (EXEC_PROXY_BIN),
// kept by restarts within the test.
func restartExecProxyEnv(t *testing.T, env []string, extra ...string) {
	t.Helper()
	prev := execProxyEnv
	execProxyEnv = env
	run := func(args string, env []string) {
		t.Helper()
		cmd := exec.Command("bash", "-c", "hack/cluster/exec-proxy.sh down && hack/cluster/exec-proxy.sh up")
		cmd.Dir = filepath.Join(clusterDir(), "..")
		cmd.Env = append(append(os.Environ(), env...), "EXEC_PROXY_EXTRA_ARGS="+args)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("restarting exec-proxy with %q: %v\n%s", args, err, out)
		}
		// The aggregator may still hold its view of the old process: wait until a pod GET goes through.
		eventually(t, 30*time.Second, "the aggregated route to serve again", func() bool {
			return clients[1].kubectl(t, viaExecProxy, "admin", "", "get", "pod", "demo", "-o", "name").code == 0
		})
	}
	run(strings.Join(extra, " "), env)
	t.Cleanup(func() {
		execProxyEnv = prev
		run("", prev)
	})
}

// TestKubeletCertificateRefused: a kubelet whose serving certificate the configured CA did not sign
// is refused with a 502 naming the node, on every protocol, and nothing reaches the container.
func TestKubeletCertificateRefused(t *testing.T) {
	restartExecProxy(t, "--kubelet-certificate-authority", filepath.Join(clusterDir(), "pki", "front-proxy-ca.crt"))
	want := `kubelet on node "127.0.0.1" (127.0.0.1:10250) failed TLS certificate verification`
	for _, c := range clients {
		res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "echo", "reached")
		if res.code == 0 || strings.Contains(res.stdout, "reached") || !strings.Contains(res.stderr, want) {
			t.Errorf("%s: want a refusal with %q, got exit %d, stdout %q, stderr %s", c.name, want, res.code, res.stdout, res.stderr)
		}
	}
	for _, up := range []upgrade{spdyUpgrade, wsUpgrade} {
		code, st := rawRequest(t, "admin", up, kubeRoute+"/api/v1/namespaces/demo/pods/demo/exec?command=true&stdout=true&container=main")
		if code != 502 || !strings.Contains(st.Message, want) || !strings.Contains(st.Message, "--kubelet-certificate-authority") {
			t.Errorf("%s: got %d %+v, want 502 with %q", up.name, code, st, want)
		}
	}
}

// TestConcurrencyThrottle: over --max-sessions-per-user a second session is a 429 with Retry-After
// naming the limit, other users are not affected, and the slot comes back when the first ends.
func TestConcurrencyThrottle(t *testing.T) {
	restartExecProxy(t, "--max-sessions-per-user", "1")
	held := clients[1].start(t, viaExecProxy, "admin", "exec", "-i", "demo", "-c", "main", "--", "sh", "-c", "echo holding; cat")
	held.waitFor(t, "holding")

	want := `user "admin" has 1 concurrent sessions, the limit is 1 (--max-sessions-per-user)`
	for _, c := range clients {
		res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "true")
		if res.code == 0 || !strings.Contains(res.stderr, want) {
			t.Errorf("%s: want a refusal with %q, got exit %d: %s", c.name, want, res.code, res.stderr)
		}
	}
	for _, up := range []upgrade{spdyUpgrade, wsUpgrade} {
		code, st, h := rawResponse(t, "admin", up, kubeRoute+"/api/v1/namespaces/demo/pods/demo/exec?command=true&stdout=true&container=main")
		if code != 429 || !strings.Contains(st.Message, want) || h.Get("Retry-After") == "" {
			t.Errorf("%s: got %d %+v Retry-After %q, want 429 with %q and Retry-After", up.name, code, st, h.Get("Retry-After"), want)
		}
	}
	if res := clients[1].kubectl(t, viaExecProxy, "ns-user", "", "exec", "demo", "-c", "main", "--", "true"); res.code != 0 {
		t.Errorf("another user is throttled too: exit %d: %s", res.code, res.stderr)
	}

	if code := held.wait(t); code != 0 {
		t.Fatalf("held session exited %d:\n%s", code, held.output())
	}
	eventually(t, 30*time.Second, "the slot to come back", func() bool {
		return clients[1].kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "true").code == 0
	})
}

// TestShutdownDrainsSessions: on SIGTERM exec-proxy lets a live session run for the grace period,
// then ends it with reason "proxy shutdown" and exits; kubectl is not left hanging.
func TestShutdownDrainsSessions(t *testing.T) {
	restartExecProxy(t, "--shutdown-grace-period=2s")
	m := marker(t)
	held := clients[1].start(t, viaExecProxy, "admin", "exec", "-i", "demo", "-c", "main", "--", "sh", "-c", "echo holding-"+m+"; cat")
	held.waitFor(t, "holding-"+m)

	signalAndWait(t, "exec-proxy", syscall.SIGTERM, 60*time.Second)
	select {
	case <-held.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("kubectl still running after exec-proxy exited; output:\n%s", held.output())
	}
	line := sessionLogLine(t, "holding-"+m)
	if !strings.Contains(line, `reason="proxy shutdown"`) {
		t.Errorf("session not ended by the drain: %s", line)
	}
	log, _ := os.ReadFile(filepath.Join(clusterDir(), "logs", "exec-proxy.log"))
	if !strings.Contains(string(log), `"Sessions drained" endedByShutdown=1`) {
		t.Errorf("exec-proxy did not report draining one session")
	}
}

// TestThrottledOutputComplete: a bandwidth-limited session gets all its output and its exit code
// over every client. The kubelet sends it all at once and closes; exec-proxy once cut the tail it
// still held back. TestThrottledTail writes much more, far ahead of the limit.
func TestThrottledOutputComplete(t *testing.T) {
	restartExecProxy(t, "--max-bytes-per-sec-per-session=1048576")
	const blocks = 48 // 3 MiB: three seconds at the limit
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "sh", "-c",
				fmt.Sprintf(`yes "$(head -c 16383 /dev/zero | tr '\0' a)" | dd bs=65536 count=%d iflag=fullblock 2>/dev/null; exit 7`, blocks))
			if res.code != 7 || len(res.stdout) != blocks*65536 {
				t.Errorf("exit %d, %d bytes of %d: %s", res.code, len(res.stdout), blocks*65536, res.stderr)
			}
		})
	}
}
