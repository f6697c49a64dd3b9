//go:build e2e

package e2e

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReliabilityUnauthorized: no try without the right to exec gets a session: get-only users on
// the WebSocket GET, users without any right on the SPDY POST, a user allowed in one namespace in
// another, forged front-proxy headers sent straight to exec-proxy with or without a client
// certificate, and anonymous requests. The audit log shows no session started for any of them.
func TestReliabilityUnauthorized(t *testing.T) {
	runCheck(t, "unauthorized tries", false, checkUnauthorized)
}

// accessTry is one request that must be refused with code, its Status message holding message.
type accessTry struct {
	name, user string
	up         upgrade
	path       string
	straight   bool              // to exec-proxy's port, not through kube-apiserver
	headers    map[string]string // added to the upgrade's
	code       int
	message    string
}

func unauthorizedTries() []accessTry {
	demo := kubeRoute + "/api/v1/namespaces/demo/pods/demo"
	teamB := kubeRoute + "/api/v1/namespaces/team-b/pods/other"
	forged := map[string]string{"X-Remote-User": "admin", "X-Remote-Group": "system:masters"}
	cannot := func(user, verb, sub, ns string) string {
		return `User "` + user + `" cannot ` + verb + ` resource "` + sub + `" in API group "" in the namespace "` + ns + `"`
	}
	var tries []accessTry
	for _, up := range []upgrade{spdyUpgrade, wsUpgrade} {
		tries = append(tries,
			accessTry{name: "get-only user, exec", user: "viewer", up: up, path: demo + "/exec?container=main&command=id&stdout=true", code: 403, message: cannot("viewer", "create", "pods/exec", "demo")},
			accessTry{name: "get-only user, attach", user: "viewer", up: up, path: demo + "/attach?container=main&stdout=true", code: 403, message: cannot("viewer", "create", "pods/attach", "demo")},
			accessTry{name: "user without rights", user: "nobody", up: up, path: demo + "/exec?container=main&command=id&stdout=true", code: 403, message: cannot("nobody", "create", "pods/exec", "demo")},
			accessTry{name: "namespace A user in B", user: "ns-user", up: up, path: teamB + "/exec?command=id&stdout=true", code: 403, message: cannot("ns-user", "create", "pods/exec", "team-b")},
			accessTry{name: "forged headers, no certificate", up: up, path: demo + "/exec?container=main&command=id&stdout=true", straight: true, headers: forged, code: 403, message: `User "system:anonymous"`},
			accessTry{name: "forged headers, a user's certificate", user: "viewer", up: up, path: demo + "/exec?container=main&command=id&stdout=true", straight: true, headers: forged, code: 403, message: cannot("viewer", "create", "pods/exec", "demo")},
			accessTry{name: "anonymous", up: up, path: demo + "/exec?container=main&command=id&stdout=true", straight: true, code: 403, message: `User "system:anonymous"`},
		)
	}
	return append(tries,
		accessTry{name: "get-only user, port-forward", user: "viewer", up: pfUpgrade, path: demo + "/portforward?ports=8080", code: 403, message: cannot("viewer", "create", "pods/portforward", "demo")},
		accessTry{name: "anonymous port-forward", up: pfUpgrade, path: demo + "/portforward?ports=8080", straight: true, headers: forged, code: 403, message: `User "system:anonymous"`})
}

func checkUnauthorized(p *probe) {
	t := p.t
	before := execProxyFigures(t)
	auditBefore := len(auditEvents(t, "exec-proxy-audit.log"))
	for _, try := range unauthorizedTries() {
		code, st := accessRequest(t, try)
		p.count(1, b2i(code >= 400), b2i(code == http.StatusSwitchingProtocols), 0)
		if code != try.code || !strings.Contains(st.Message, try.message) {
			p.finding("%s (%s): got %d %q, want %d with %q", try.name, try.up.name, code, st.Message, try.code, try.message)
		}
	}
	attackers := map[string]bool{"viewer": true, "nobody": true, "system:anonymous": true}
	for _, ev := range auditEvents(t, "exec-proxy-audit.log")[auditBefore:] {
		user := ev.User.Username
		if ev.Annotations[annotation+"record"] == "start" && (attackers[user] || (user == "ns-user" && ev.ObjectRef != nil && ev.ObjectRef.Namespace == "team-b")) {
			p.finding("a session started for %s: %s", user, ev.AuditID)
		}
	}
	p.leakCheck(before)
}

// accessRequest sends try through kube-apiserver (rawRequest) or straight to exec-proxy.
func accessRequest(t *testing.T, try accessTry) (int, status) {
	t.Helper()
	up := try.up
	if len(try.headers) > 0 {
		up.headers = map[string]string{}
		for k, v := range try.up.headers {
			up.headers[k] = v
		}
		for k, v := range try.headers {
			up.headers[k] = v
		}
	}
	if !try.straight {
		return routeRequest(t, try.user, up, try.path)
	}
	a := straightUpgrade(t, try.user, up, try.path, false)
	return a.code, a.status
}

// TestReliabilityBadInput: malformed requests get a 4xx Status (an oversized header, Go's own
// 431) and leave no goroutine or descriptor behind.
func TestReliabilityBadInput(t *testing.T) {
	runCheck(t, "bad input (requests)", false, checkBadRequests)
}

func badRequests() []accessTry {
	exec := "/apis/execproxy.dev/v1alpha1/namespaces/demo/pods/demo/exec"
	pf := kubeRoute + "/api/v1/namespaces/demo/pods/demo/portforward"
	bogus := func(up upgrade, k, v string) upgrade {
		out := upgrade{up.name, up.method, map[string]string{}}
		for hk, hv := range up.headers {
			out.headers[hk] = hv
		}
		if v == "" {
			delete(out.headers, k)
		} else {
			out.headers[k] = v
		}
		return out
	}
	huge := strings.Repeat("&command=aaaaaaaa", 2000)
	return []accessTry{
		{name: "no command", up: spdyUpgrade, path: exec + "?container=main&stdout=true", code: 400, message: "exec needs a command"},
		{name: "no container of two", up: spdyUpgrade, path: exec + "?command=id&stdout=true", code: 400, message: "a container name must be specified for pod demo, choose one of: [main sidecar]"},
		{name: "empty container", up: spdyUpgrade, path: exec + "?container=&command=id&stdout=true", code: 400, message: "container parameter must be given once and not be empty"},
		{name: "bad boolean", up: spdyUpgrade, path: exec + "?container=main&command=id&stdout=maybe", code: 400, message: "stdout"},
		{name: "no stream", up: spdyUpgrade, path: exec + "?container=main&command=id", code: 400, message: "at least one of stdin, stdout and stderr must be true"},
		{name: "huge argv", up: spdyUpgrade, path: exec + "?container=main&stdout=true" + huge, code: 400, message: "at most 1024 are allowed"},
		{name: "non-UTF-8 argument", up: spdyUpgrade, path: exec + "?container=main&stdout=true&command=%ff%fe", code: 400, message: "not valid UTF-8"},
		{name: "port out of range", up: pfUpgrade, path: pf + "?ports=70000", code: 400, message: "70000"},
		{name: "port zero", up: pfUpgrade, path: pf + "?ports=0", code: 400, message: "port"},
		{name: "port not a number", up: pfUpgrade, path: pf + "?ports=http", code: 400, message: "http"},
		{name: "PUT", up: upgrade{"PUT", http.MethodPut, spdyUpgrade.headers}, path: exec + "?container=main&command=id&stdout=true", code: 405, message: "does not allow this method"},
		{name: "DELETE", up: upgrade{"DELETE", http.MethodDelete, spdyUpgrade.headers}, path: exec + "?container=main&command=id&stdout=true", code: 405, message: "does not allow this method"},
		{name: "no Upgrade header", up: bogus(spdyUpgrade, "Upgrade", ""), path: exec + "?container=main&command=id&stdout=true", code: 400, message: "exec needs a connection upgrade"},
		{name: "bogus Upgrade header", up: bogus(spdyUpgrade, "Upgrade", "h2c"), path: exec + "?container=main&command=id&stdout=true", code: 400, message: "Upgrade: h2c is not served"},
		{name: "WebSocket GET without Upgrade", up: bogus(wsUpgrade, "Upgrade", ""), path: exec + "?container=main&command=id&stdout=true", code: 400, message: "exec needs a connection upgrade"},
		{name: "unknown SPDY subprotocol", up: bogus(spdyUpgrade, "X-Stream-Protocol-Version", "v99.channel.k8s.io"), path: exec + "?container=main&command=id&stdout=true", code: 400, message: "none of the requested protocols [v99.channel.k8s.io]"},
		{name: "unknown WebSocket subprotocol", up: bogus(wsUpgrade, "Sec-WebSocket-Protocol", "v99.channel.k8s.io"), path: exec + "?container=main&command=id&stdout=true", code: 400, message: "none of the requested protocols [v99.channel.k8s.io]"},
	}
}

func checkBadRequests(p *probe) {
	t := p.t
	before := execProxyFigures(t)
	for _, try := range badRequests() {
		a := straightUpgrade(t, "admin", try.up, try.path, false)
		p.count(1, b2i(a.code >= 400), b2i(a.code == http.StatusSwitchingProtocols), 0)
		if a.code != try.code || a.status.Kind != "Status" || !strings.Contains(strings.ToLower(a.status.Message), strings.ToLower(try.message)) {
			p.finding("%s: got %d %q, want a %d Status with %q", try.name, a.code, a.body, try.code, try.message)
		}
	}
	code := oversizedHeader(t)
	p.count(1, b2i(code >= 400), 0, 0)
	if code != http.StatusRequestHeaderFieldsTooLarge {
		p.finding("a 2 MiB header: got %d, want 431", code)
	}
	p.leakCheck(before)
}

// oversizedHeader sends an upgrade with a 2 MiB header; Go's server answers 431 before any handler.
func oversizedHeader(t *testing.T) int {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: userTLS(t, "admin"),
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, "https://"+execProxyAddr+"/apis/execproxy.dev/v1alpha1/namespaces/demo/pods/demo/exec?container=main&command=id&stdout=true", nil)
	for k, v := range spdyUpgrade.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("X-Padding", strings.Repeat("x", 2<<20))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("oversized header: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
