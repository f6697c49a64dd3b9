//go:build e2e

package e2e

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// The session policy of TestSessionPolicy: pods labelled e2e-policy=read-only in demo take no
// stdin and run only echo, sleep and cat /etc/hostname, one session per user for at most 8 s;
// team-b's sessions need a ticket; port-forwards in demo need any reason.
const sessionPolicy = `apiVersion: execproxy.dev/v1alpha1
kind: SessionPolicy
rules:
- name: read-only
  match: {namespaces: [demo], podSelector: {matchLabels: {e2e-policy: read-only}}, kinds: [exec, attach]}
  stdin: deny
  commands:
    allow: [{command: echo}, {command: sleep}, {command: cat, args: [/etc/hostname]}]
  limits: {maxSessionsPerUser: 1, maxDuration: 8s}
- name: ticket
  match: {namespaces: [team-b]}
  requireReason: {pattern: "INC-[0-9]+"}
- name: forward-with-reason
  match: {namespaces: [demo], kinds: [portforward]}
  requireReason: {}
`

// The same policy, edited while exec-proxy runs: stdin is allowed, a terminal is not.
var sessionPolicyEdited = strings.Replace(sessionPolicy, "  stdin: deny\n  commands:\n", "  commands:\n    tty: deny\n", 1)

// TestSessionPolicy: the session policy refuses, with a Status naming the rule, what its rules do
// not allow, for stock kubectl over SPDY and WebSocket and for the plugin, and lets the rest run
// under the rule's limits; every record names the rule; an edit is in force without a restart.
func TestSessionPolicy(t *testing.T) {
	file := filepath.Join(t.TempDir(), "session-policy.yaml")
	writeFile(t, file, sessionPolicy)
	restartExecProxy(t, "--session-policy-file="+file)
	labelPod(t, "demo", "demo", "e2e-policy=read-only")
	labelPod(t, "demo", "echo", "e2e-policy=read-only")
	// The label reaches exec-proxy's informer a moment after the API has it.
	eventually(t, 15*time.Second, "the read-only rule to apply to pod demo", func() bool {
		res := clients[1].kubectl(t, viaExecProxy, "admin", "x", "-n", "demo", "exec", "-i", "demo", "-c", "main", "--", "echo", "probe")
		return strings.Contains(res.stderr, `rule "read-only"`)
	})

	for _, c := range clients[:2] { // kubectl 1.28 (SPDY) and 1.33 (WebSocket)
		t.Run(c.name, func(t *testing.T) {
			t.Run("read-only exec", func(t *testing.T) {
				m := marker(t)
				res := c.kubectl(t, viaExecProxy, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "echo", m)
				if res.code != 0 || res.stdout != m+"\n" {
					t.Fatalf("without stdin: exit %d %q %s", res.code, res.stdout, res.stderr)
				}
				start := sessionRecords(t, m, map[string]int{"start": 1, "end": 1})["start"][0]
				if rule := start.Annotations[annotation+"policy-rule"]; rule != "read-only" {
					t.Errorf("start record's policy-rule %q, want read-only", rule)
				}
				m = marker(t)
				res = c.kubectl(t, viaExecProxy, "admin", "typed\n", "-n", "demo", "exec", "-i", "demo", "-c", "main", "--", "echo", m)
				wantRefused(t, res, `pods/exec "demo" is forbidden: session policy rule "read-only" makes exec sessions read-only: run it without stdin (no -i/--stdin)`)
				refused := sessionRecords(t, m, map[string]int{"refused": attempts(c)})["refused"][0]
				if refused.ResponseStatus == nil || refused.ResponseStatus.Code != http.StatusForbidden || refused.Annotations[annotation+"policy-rule"] != "read-only" {
					t.Errorf("refused record: status %+v, policy-rule %q", refused.ResponseStatus, refused.Annotations[annotation+"policy-rule"])
				}
			})

			t.Run("commands", func(t *testing.T) {
				res := c.kubectl(t, viaExecProxy, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "cat", "/etc/hostname")
				if res.code != 0 || strings.TrimSpace(res.stdout) != "demo" {
					t.Errorf("an allowed command: exit %d %q %s", res.code, res.stdout, res.stderr)
				}
				m := marker(t)
				res = c.kubectl(t, viaExecProxy, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "cat", "/etc/passwd", m)
				wantRefused(t, res, `session policy rule "read-only" does not allow the command ["cat" "/etc/passwd" "`+m+`"]; it allows echo, sleep, cat`)
				sessionRecords(t, m, map[string]int{"refused": attempts(c), "start": 0})
				res = c.kubectl(t, viaExecProxy, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "sh", "-c", "echo "+m)
				wantRefused(t, res, `does not allow the command ["sh" "-c" "echo `+m+`"]`)
			})

			t.Run("read-only attach", func(t *testing.T) {
				refused := c.kubectl(t, viaExecProxy, "admin", "typed\n", "-n", "demo", "attach", "-i", "echo", "-c", "echo")
				wantRefused(t, refused, `pods/attach "echo" is forbidden: session policy rule "read-only" makes attach sessions read-only`)
				// Output still flows: what another user types through kube-apiserver's own attach
				// reaches the read-only attacher.
				watcher := c.start(t, viaExecProxy, "admin", "-n", "demo", "attach", "echo", "-c", "echo")
				m := marker(t)
				eventually(t, 30*time.Second, "the read-only attacher to see another's input echoed", func() bool {
					typist := clients[1].kubectl(t, viaAPIServer, "admin", m+"\n", "-n", "demo", "attach", "-i", "echo", "-c", "echo")
					if typist.code != 0 {
						t.Logf("typist: %s", typist.stderr)
					}
					return strings.Contains(watcher.output(), "echo: "+m)
				})
				watcher.stop()
			})

			t.Run("limits", func(t *testing.T) {
				m := "60" + digits(t) // sleep's argument, and the records' marker
				long := c.start(t, viaExecProxy, "admin", "-n", "demo", "exec", "demo", "-c", "main", "--", "sleep", m)
				sessionRecords(t, m, map[string]int{"start": 1})
				live := admin(t, "", "-n", "demo", "get", "execsessions", "-o", `jsonpath={.items[?(@.spec.command[1]=="`+m+`")].status.policyRule}`)
				if live != "read-only" {
					t.Errorf("the live session's execsession: status.policyRule %q, want read-only", live)
				}
				res := c.kubectl(t, viaExecProxy, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "echo", "second")
				wantRefused(t, res, `user "admin" has 1 concurrent sessions under session policy rule "read-only", which allows 1`)
				// The rule's maxDuration (8 s) ends the first session; the flags set none.
				end := sessionRecords(t, m, map[string]int{"start": 1, "end": 1})["end"][0]
				if reason := end.Annotations[annotation+"reason"]; reason != "max duration" {
					t.Errorf("end reason %q, want max duration", reason)
				}
				<-long.done
			})
		})
	}

	t.Run("reason", func(t *testing.T) {
		m := marker(t)
		res := clients[1].kubectl(t, viaExecProxy, "admin", "", "-n", "team-b", "exec", "other", "--", "echo", m)
		wantRefused(t, res, "session policy rule \"ticket\" requires a reason matching INC-[0-9]+: give one with `kubectl execproxy exec --reason ...`")
		ticket := "INC-" + digits(t)
		out, err := plugin(t, kubeconfig("admin"), "exec", "--reason", ticket, "-n", "team-b", "other", "--", "sh", "-c", "echo "+m+"; sleep 1")
		if err != nil || !strings.Contains(out, m) {
			t.Fatalf("the plugin with a reason: %v\n%s", err, out)
		}
		start := sessionRecords(t, m, map[string]int{"refused": attempts(clients[1]), "start": 1, "end": 1})["start"][0]
		if j, rule := start.Annotations[annotation+"justification"], start.Annotations[annotation+"policy-rule"]; j != ticket || rule != "ticket" {
			t.Errorf("start record: justification %q, policy-rule %q; want %q, ticket", j, rule, ticket)
		}
		out, err = plugin(t, kubeconfig("admin"), "exec", "--reason", "because", "-n", "team-b", "other", "--", "echo", m)
		if err == nil || !strings.Contains(out, `requires a reason matching INC-[0-9]+, and "because" does not match`) {
			t.Errorf("a reason off the pattern: %v\n%s", err, out)
		}
	})

	t.Run("port-forward reason", func(t *testing.T) {
		res := clients[1].kubectl(t, viaExecProxy, "admin", "", "-n", "demo", "port-forward", "demo", ":8080", "--pod-running-timeout=5s")
		if res.code == 0 || !strings.Contains(res.stdout+res.stderr, `session policy rule "forward-with-reason" requires a reason`) {
			t.Errorf("stock kubectl port-forward: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		reason := "e2e " + marker(t)
		fwd := startPlugin(t, kubeconfig("admin"), "port-forward", "--reason", reason, "-n", "demo", "demo", ":8080")
		port := fwd.waitForPort(t)
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%s/", port))
		if err != nil {
			t.Fatalf("through the plugin's port-forward: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fwd.stop()
		start := recordsWhere(t, "the port-forward's records", func(ev auditv1.Event) bool {
			return ev.Annotations[annotation+"justification"] == reason
		}, map[string]int{"start": 1, "end": 1})["start"][0]
		if start.Annotations[annotation+"kind"] != "portforward" || start.Annotations[annotation+"policy-rule"] != "forward-with-reason" {
			t.Errorf("start record: %v", start.Annotations)
		}
	})

	t.Run("edited while running", func(t *testing.T) {
		writeFile(t, file, sessionPolicyEdited)
		m := marker(t)
		eventually(t, 20*time.Second, "the edited policy to let stdin through", func() bool {
			return clients[1].kubectl(t, viaExecProxy, "admin", m+"\n", "-n", "demo", "exec", "-i", "demo", "-c", "main", "--", "cat", "/etc/hostname").code == 0
		})
		for _, c := range clients[:2] {
			term := newTerminal(t, 250, 30, c.env, c.path(), "--kubeconfig", kubeconfig("admin"), "-n", "demo", "exec", "-it", "demo", "-c", "main", "--", "sleep", "1")
			term.waitFor(`session policy rule "read-only" allows no terminal: run exec without a TTY (no -t/--tty)`)
			if status := term.exitStatus(); status == "0" {
				t.Errorf("%s: exit status 0 for a refused terminal", c.name)
			}
		}
		// A file that no longer parses leaves the edited policy in force.
		writeFile(t, file, sessionPolicy+"  typo: true\n")
		time.Sleep(3 * time.Second) // a reload period and more: the broken file has been read
		if res := clients[1].kubectl(t, viaExecProxy, "admin", "x\n", "-n", "demo", "exec", "-i", "demo", "-c", "main", "--", "cat", "/etc/hostname"); res.code != 0 {
			t.Errorf("after a broken edit: exit %d %s", res.code, res.stderr)
		}
		if metrics := execProxyMetrics(t); metrics["execproxy_session_policy_last_reload_failed"] != 1 {
			t.Errorf("the broken file is not in the metrics: last_reload_failed %v, reloads %v", metrics["execproxy_session_policy_last_reload_failed"],
				metrics[`execproxy_session_policy_reloads_total{result="error"}`])
		}
	})
}

// attempts is how many times c tries a session the server refuses: kubectl 1.30 and later try
// WebSocket, then SPDY, as they do on kube-apiserver's own path.
func attempts(c client) int {
	if c.protocol == "v5.channel.k8s.io" {
		return 2
	}
	return 1
}

// wantRefused checks kubectl failed and printed msg (the Status's message).
func wantRefused(t *testing.T, res result, msg string) {
	t.Helper()
	if res.code == 0 || !strings.Contains(res.stderr, msg) {
		t.Errorf("exit %d, stderr %q; want a failure printing %q", res.code, res.stderr, msg)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	// Written whole and renamed into place, as a ConfigMap volume swaps its files.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// labelPod sets a label on a pod for the rest of the test.
func labelPod(t *testing.T, namespace, pod, label string) {
	t.Helper()
	admin(t, "", "-n", namespace, "label", "pod", pod, label, "--overwrite")
	key, _, _ := strings.Cut(label, "=")
	t.Cleanup(func() { admin(t, "", "-n", namespace, "label", "pod", pod, key+"-") })
}

func digits(t *testing.T) string {
	n, err := rand.Int(rand.Reader, big.NewInt(1e9))
	if err != nil {
		t.Fatal(err)
	}
	return n.String()
}

// recordsWhere waits for the session audit records that match, and returns them by record kind.
func recordsWhere(t *testing.T, what string, match func(auditv1.Event) bool, want map[string]int) map[string][]auditv1.Event {
	t.Helper()
	return recordsIn(t, "exec-proxy-audit.log", what, match, want)
}

// recordsIn is recordsWhere in the audit log logName (exec-proxy-2-audit.log: replica 2's).
func recordsIn(t *testing.T, logName, what string, match func(auditv1.Event) bool, want map[string]int) map[string][]auditv1.Event {
	t.Helper()
	var got map[string][]auditv1.Event
	eventually(t, 10*time.Second, what+" in "+logName, func() bool {
		got = map[string][]auditv1.Event{}
		for _, ev := range auditEvents(t, logName) {
			if match(ev) {
				kind := ev.Annotations[annotation+"record"]
				got[kind] = append(got[kind], ev)
			}
		}
		for kind, n := range want {
			if len(got[kind]) != n {
				return false
			}
		}
		return true
	})
	return got
}

// pluginProcess is a `kubectl execproxy` left running (port-forward).
type pluginProcess struct {
	cmd   *exec.Cmd
	lines chan string
}

func startPlugin(t *testing.T, kubeconfig string, args ...string) *pluginProcess {
	t.Helper()
	cmd := exec.Command(clients[1].path(), append([]string{"execproxy"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+filepath.Join(repoRoot(), "bin")+":"+os.Getenv("PATH"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &pluginProcess{cmd: cmd, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		close(p.lines)
	}()
	t.Cleanup(p.stop)
	return p
}

var forwardingLine = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) ->`)

// waitForPort is the local port kubectl port-forward says it listens on.
func (p *pluginProcess) waitForPort(t *testing.T) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatal("the plugin's port-forward exited before it forwarded")
			}
			t.Logf("port-forward: %s", line)
			if m := forwardingLine.FindStringSubmatch(line); m != nil {
				return m[1]
			}
		case <-timeout:
			t.Fatal("the plugin's port-forward did not forward in time")
		}
	}
}

func (p *pluginProcess) stop() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(os.Interrupt)
		_ = p.cmd.Wait()
	}
}
