//go:build e2e

package e2e

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// TestEverySessionPathIsAudited: spellings of session paths a user can curl through kube-apiserver
// (trailing and double slashes, a path after the subresource, encoded characters, path parameters,
// case, dot segments), over SPDY and WebSocket. Each one exec-proxy opened as a session (101) has one
// start and one end record; each it refused after opening an attempt (its answer has a session id)
// has one refused record. Records are found by the command's marker, unique to each try, since a
// 101 carries the kubelet's headers, not exec-proxy's.
func TestEverySessionPathIsAudited(t *testing.T) {
	runCheck(t, "audit: session path spellings", false, checkEverySessionPathIsAudited)
}

// TestReliabilityUnauditedSessions: the same spellings as a row of the reliability table: sessions
// without a record must be 0.
func TestReliabilityUnauditedSessions(t *testing.T) {
	runCheck(t, "unaudited-session attempts (path spellings)", false, func(p *probe) {
		before := execProxyFigures(t)
		checkEverySessionPathIsAudited(p)
		p.leakCheck(before)
	})
}

func checkEverySessionPathIsAudited(p *probe) {
	t := p.t
	const group = "/apis/execproxy.dev/v1alpha1"
	pod := "/namespaces/demo/pods/demo"
	var paths []string
	for _, base := range []string{kubeRoute + "/api/v1" + pod, group + pod} {
		for _, sub := range []string{"/exec", "/exec/", "/exec/anything", "/exec//", "//exec", "/%65xec", "/exec%2F",
			"/exec;x=y", "/EXEC", "/x/../exec", "/exec/.", "/exec/.."} {
			paths = append(paths, base+sub)
		}
	}
	paths = append(paths, kubeRoute+"//api/v1"+pod+"/exec", kubeRoute+"/api//v1"+pod+"/exec", group+"//namespaces/demo/pods/demo/exec",
		kubeRoute+"/api/v1/namespaces/demo/pods/demo%2Fexec", kubeRoute+"/api/v1/namespaces/demo/pods/%2e%2e/exec")

	type answer struct {
		what, key, session string
		code               int
	}
	m := marker(t)
	var answers []answer
	for i, path := range paths {
		for _, up := range []upgrade{spdyUpgrade, wsUpgrade} {
			what := fmt.Sprintf("%s %s", up.name, path)
			var key string
			var code int
			var header http.Header
			// The start rate is not what this is about: a 429 is tried again, under a key of its own.
			for try := 0; try == 0 || code == http.StatusTooManyRequests; try++ {
				if try > 0 {
					time.Sleep(time.Second)
				}
				key = fmt.Sprintf("%s-%d-%s-%d", m, i, up.name, try)
				code, header = upgradeAnswer(t, "ns-user", up, path+"?container=main&stdout=true&command=echo&command="+key)
			}
			answers = append(answers, answer{what: what, key: key, session: header.Get("X-Exec-Proxy-Session-Id"), code: code})
			t.Logf("%s: %d, session %q", what, code, header.Get("X-Exec-Proxy-Session-Id"))
		}
	}
	if answers[0].code != http.StatusSwitchingProtocols || answers[1].code != http.StatusSwitchingProtocols {
		t.Fatalf("the plain route path did not open a session: %+v", answers[:2])
	}
	for _, a := range answers {
		p.count(1, b2i(a.code != http.StatusSwitchingProtocols), b2i(a.code == http.StatusSwitchingProtocols), 0)
	}
	// Every session has its start and end records, every answer with a session id its refused record.
	var missing []string
	waitUntil(30*time.Second, func() bool {
		byKey := map[string]map[string]int{}
		for _, ev := range auditEvents(t, "exec-proxy-audit.log") {
			if cmd := ev.Annotations[annotation+"command"]; strings.Contains(cmd, m) {
				key := cmd[strings.LastIndex(cmd, m):strings.LastIndexByte(cmd, '"')]
				if byKey[key] == nil {
					byKey[key] = map[string]int{}
				}
				byKey[key][ev.Annotations[annotation+"record"]]++
				checkPathRecord(t, ev)
			}
		}
		missing = nil
		for _, a := range answers {
			got := byKey[a.key]
			switch {
			case a.code != http.StatusSwitchingProtocols && a.session == "":
			case a.code == http.StatusSwitchingProtocols && (got["start"] != 1 || got["end"] != 1 || got["refused"] != 0):
				missing = append(missing, fmt.Sprintf("%s: session %s has records %v, want one start and one end", a.what, a.key, got))
			case a.code != http.StatusSwitchingProtocols && (got["refused"] != 1 || got["start"] != 0):
				missing = append(missing, fmt.Sprintf("%s: %d, session %s has records %v, want one refused", a.what, a.code, a.session, got))
			}
		}
		return len(missing) == 0
	})
	for _, s := range missing {
		p.finding("%s", s)
	}
}

// checkPathRecord: whatever the path's spelling, a record names the pod the session was for.
func checkPathRecord(t *testing.T, ev auditv1.Event) {
	t.Helper()
	if ev.Annotations[annotation+"record"] != "refused" && (ev.ObjectRef == nil || ev.ObjectRef.Namespace != "demo" ||
		ev.ObjectRef.Name != "demo" || ev.ObjectRef.Subresource != "exec" || ev.User.Username != "ns-user") {
		t.Errorf("record %s of %s: %+v", ev.Annotations[annotation+"record"], ev.RequestURI, ev)
	}
}

// upgradeAnswer sends an upgrade as user to kube-apiserver's path as written (no redirect followed,
// any body), and closes it at once: a session opened ends as the client closed it.
func upgradeAnswer(t *testing.T, user string, up upgrade, path string) (int, http.Header) {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: userTLS(t, user),
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
	}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequest(up.method, apiServer+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range up.headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", up.method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// TestKubectlCommandRecorded: kubectl 1.33 sends KEP-859's Kubectl-Command and Kubectl-Session
// headers, kube-apiserver's aggregator passes them on, and the records say which command a session
// was: a kubectl cp is "kubectl cp", the exec before it "kubectl exec", each with its own session.
func TestKubectlCommandRecorded(t *testing.T) {
	for _, c := range clients {
		if c.version != "1.33" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			m := marker(t)
			remote := "/tmp/cp-" + m
			if res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "sh", "-c", "echo "+m+" > "+remote); res.code != 0 {
				t.Fatalf("exec: exit %d: %s", res.code, res.stderr)
			}
			defer c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "rm", "-f", remote)
			if res := c.kubectl(t, viaExecProxy, "admin", "", "cp", "-c", "main", "demo/demo:"+remote, filepath.Join(t.TempDir(), "back")); res.code != 0 {
				t.Fatalf("cp from the pod: exit %d: %s", res.code, res.stderr)
			}
			var starts []auditv1.Event
			eventually(t, 10*time.Second, "the start records of the exec and the cp", func() bool {
				starts = nil
				for _, ev := range auditEvents(t, "exec-proxy-audit.log") {
					if strings.Contains(ev.Annotations[annotation+"command"], m) && ev.Annotations[annotation+"record"] == "start" {
						starts = append(starts, ev)
					}
				}
				return len(starts) >= 2
			})
			sessions := map[string]string{} // kubectl command → its Kubectl-Session
			for _, ev := range starts {
				a := ev.Annotations
				want := "kubectl exec"
				if strings.Contains(a[annotation+"command"], `"tar"`) {
					want = "kubectl cp"
				}
				if a[annotation+"kubectl-command"] != want || a[annotation+"kubectl-session"] == "" {
					t.Errorf("session %s (command %s): kubectl-command %q, kubectl-session %q; want %q and a session",
						ev.AuditID, a[annotation+"command"], a[annotation+"kubectl-command"], a[annotation+"kubectl-session"], want)
				}
				sessions[want] = a[annotation+"kubectl-session"]
			}
			if len(sessions) != 2 || sessions["kubectl cp"] == sessions["kubectl exec"] {
				t.Errorf("kubectl sessions %v: want one of cp and one of exec, not the same", sessions)
			}
		})
	}
}
