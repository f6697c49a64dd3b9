//go:build e2e

package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exec-proxy/exec-proxy/internal/testcert"
)

// pfUpgrade is kubectl port-forward's SPDY upgrade.
var pfUpgrade = upgrade{"SPDY port-forward", http.MethodPost, map[string]string{
	"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "portforward.k8s.io"}}

// straightAnswer is exec-proxy's answer to an upgrade sent straight to its port on a connection
// of its own, and (when waited for) whether exec-proxy closed that connection after a refusal.
type straightAnswer struct {
	code   int
	status status
	body   string
	closed bool
}

// straightUpgrade sends the upgrade; a 429 (the session start rate) is retried after Retry-After.
func straightUpgrade(t *testing.T, user string, up upgrade, path string, waitClose bool) straightAnswer {
	t.Helper()
	for {
		a := straightUpgradeOnce(t, user, up, path, waitClose)
		if a.code != http.StatusTooManyRequests {
			return a
		}
		time.Sleep(time.Second)
	}
}

func straightUpgradeOnce(t *testing.T, user string, up upgrade, path string, waitClose bool) straightAnswer {
	t.Helper()
	conn, r, resp := sendUpgrade(t, user, up, path)
	defer conn.Close()
	var a straightAnswer
	a.code = resp.StatusCode
	switch {
	case a.code == http.StatusSwitchingProtocols && up.name == wsUpgrade.name:
		// The translator accepts the WebSocket before it dials the kubelet, as kube-apiserver's
		// does: a refusal comes as a Status on the error channel.
		a.body = wsErrorChannel(r)
		_ = json.Unmarshal([]byte(a.body), &a.status)
	case a.code == http.StatusSwitchingProtocols:
		return a
	default:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		a.body = string(body)
		_ = json.Unmarshal(body, &a.status)
	}
	if !waitClose {
		return a
	}
	// A refused upgrade must not leave the connection open for more requests.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, r) // nil at EOF
	var ne net.Error
	a.closed = !(errors.As(err, &ne) && ne.Timeout())
	return a
}

// routeRequest is rawRequest (through kube-apiserver) retried after a 429: the session start
// rate is not what these checks are about.
func routeRequest(t *testing.T, user string, up upgrade, path string) (int, status) {
	t.Helper()
	for {
		code, st := rawRequest(t, user, up, path)
		if code != http.StatusTooManyRequests {
			return code, st
		}
		time.Sleep(time.Second)
	}
}

// kubectlRetried is c.kubectl retried after a 429, for the same reason.
func kubectlRetried(t *testing.T, c client, user string, args ...string) result {
	t.Helper()
	for {
		res := c.kubectl(t, viaExecProxy, user, "", args...)
		if !throttled(res.stderr) {
			return res
		}
		time.Sleep(time.Second)
	}
}

// throttled says whether kubectl was refused by exec-proxy's start rate. Over SPDY kubectl names
// the 429's reason (TooManyRequests); over WebSocket kubectl 1.36 prints only the Status's message,
// which names the flags.
func throttled(stderr string) bool {
	return strings.Contains(stderr, "TooManyRequests") || strings.Contains(stderr, "--session-start-qps")
}

// sendUpgrade sends the upgrade as user straight to exec-proxy on a connection of its own, and
// reads the answer's head.
func sendUpgrade(t *testing.T, user string, up upgrade, path string) (*tls.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn, err := tls.Dial("tcp", execProxyAddr, userTLS(t, user))
	if err != nil {
		t.Fatalf("dialing exec-proxy: %v", err)
	}
	req, _ := http.NewRequest(up.method, "https://"+execProxyAddr+path, nil)
	for k, v := range up.headers {
		req.Header.Set(k, v)
	}
	if err := req.Write(conn); err != nil {
		t.Fatalf("%s %s: %v", up.method, path, err)
	}
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, req)
	if err != nil {
		t.Fatalf("%s %s: no answer from exec-proxy: %v", up.method, path, err)
	}
	return conn, r, resp
}

// wsErrorChannel reads server frames of a v5.channel.k8s.io session until the error channel (3)
// says something, and returns it.
func wsErrorChannel(r *bufio.Reader) string {
	for {
		var head [2]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return ""
		}
		n := uint64(head[1] & 0x7f)
		if n >= 126 {
			ext := make([]byte, map[bool]int{true: 2, false: 8}[n == 126])
			if _, err := io.ReadFull(r, ext); err != nil {
				return ""
			}
			n = 0
			for _, b := range ext {
				n = n<<8 | uint64(b)
			}
		}
		payload := make([]byte, min(n, 1<<20))
		if _, err := io.ReadFull(r, payload); err != nil || head[0]&0x0f == 8 { // 8: close
			return ""
		}
		if len(payload) > 1 && payload[0] == 3 {
			return string(payload[1:])
		}
	}
}

// TestReliabilityRogueKubelet: at a node's address, a TLS server with a certificate from another
// CA, or from the cluster's CA for another name, receives no byte of any session, and every
// session is refused with a 502 Status that says the kubelet failed verification.
func TestReliabilityRogueKubelet(t *testing.T) {
	runCheck(t, "rogue kubelet (wrong CA, wrong SAN)", false, checkRogueKubelet)
}

func checkRogueKubelet(p *probe) {
	t := p.t
	before := execProxyFigures(t)
	cases := []struct {
		node, ip, certIP string
		signer           *testcert.CA
	}{
		{"rogue-ca", "127.0.0.5", "127.0.0.5", nil},
		{"rogue-san", "127.0.0.6", "127.0.0.99", clusterCA(t)},
	}
	const want = "failed TLS certificate verification"
	for _, tc := range cases {
		k := startRogueKubelet(t, tc.ip, tc.certIP, tc.signer, nil)
		pod := "victim-" + tc.node
		fakeNode(t, tc.node, tc.ip, k.port(), pod)
		base := kubeRoute + "/api/v1/namespaces/" + reliabilityNamespace + "/pods/" + pod
		tries := []struct {
			up   upgrade
			path string
		}{
			{spdyUpgrade, base + "/exec?command=id&stdout=true"},
			{wsUpgrade, base + "/exec?command=id&stdout=true"},
			{spdyUpgrade, base + "/attach?stdout=true"},
			{wsUpgrade, base + "/attach?stdout=true"},
			{pfUpgrade, base + "/portforward"},
		}
		for _, try := range tries {
			code, st := routeRequest(t, "admin", try.up, try.path)
			p.count(1, b2i(code != http.StatusSwitchingProtocols), b2i(code == http.StatusSwitchingProtocols), 0)
			if code != http.StatusBadGateway || !strings.Contains(st.Message, want) {
				p.finding("%s: %s %s: got %d %q, want 502 with %q", tc.node, try.up.name, try.path, code, st.Message, want)
			}
		}
		for _, c := range clients {
			res := kubectlRetried(t, c, "admin", "-n", reliabilityNamespace, "exec", pod, "--", "echo", "reached")
			p.count(1, b2i(res.code != 0), 0, 0)
			if res.code == 0 || !strings.Contains(res.stderr, want) {
				p.finding("%s: %s: exit %d, stderr %s", tc.node, c.name, res.code, res.stderr)
			}
		}
		if n := k.appBytes.Load(); n != 0 || k.requests.Load() != 0 {
			p.finding("%s: %d requests, %d bytes reached the rogue kubelet after the TLS handshake", tc.node, k.requests.Load(), n)
		}
		p.figure("%s: %d TLS handshakes refused, %d bytes reached it", tc.node, k.accepted.Load(), k.appBytes.Load())
	}
	p.leakCheck(before)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// kubeletAnswers are a kubelet's wrong answers to an upgrade, by the pod the request names.
var kubeletAnswers = map[string]string{
	"answer-301": "HTTP/1.1 301 Moved Permanently\r\nLocation: /trap/moved\r\nContent-Length: 0\r\n\r\n",
	"answer-302": "HTTP/1.1 302 Found\r\nLocation: https://%s/trap/found\r\nContent-Length: 0\r\n\r\n",
	"answer-307": "HTTP/1.1 307 Temporary Redirect\r\nLocation: /trap/temporary\r\nContent-Length: 0\r\n\r\n",
	"answer-401": "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nUnauthorized",
	"answer-403": "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 19\r\n\r\nForbidden (kubelet)",
	"answer-404": "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 18\r\n\r\n404 page not found",
	"answer-500": "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\ninternal error",
	"answer-200": "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
}

// answerByPod answers a request for /exec|attach|portForward/ns/POD/... with POD's answer.
func answerByPod(addr string) func(io.Writer, *http.Request) {
	return func(w io.Writer, req *http.Request) {
		parts := strings.Split(req.URL.Path, "/")
		if len(parts) < 4 {
			fmt.Fprint(w, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		answer, ok := kubeletAnswers[parts[3]]
		if !ok {
			answer = kubeletAnswers["answer-404"]
		}
		if strings.Contains(answer, "%s") {
			answer = fmt.Sprintf(answer, addr)
		}
		fmt.Fprint(w, answer)
	}
}

// TestReliabilityKubeletAnswers: a kubelet that answers an upgrade with a redirect, an error or a
// 200 without upgrading gives the client a Status error and a closed connection. exec-proxy
// follows no redirect and sends nothing more on the kubelet connection: the classes of
// CVE-2018-1002105 and CVE-2020-8559.
func TestReliabilityKubeletAnswers(t *testing.T) {
	runCheck(t, "kubelet answers 3xx/4xx/5xx/200", false, checkKubeletAnswers)
}

func checkKubeletAnswers(p *probe) {
	t := p.t
	before := execProxyFigures(t)
	k := startRogueKubelet(t, "127.0.0.7", "127.0.0.7", clusterCA(t), nil)
	k.answer = answerByPod(k.ln.Addr().String())
	pods := slices.Sorted(maps.Keys(kubeletAnswers))
	fakeNode(t, "odd-kubelet", "127.0.0.7", k.port(), pods...)
	for _, pod := range pods {
		base := "/apis/execproxy.dev/v1alpha1/namespaces/" + reliabilityNamespace + "/pods/" + pod
		for _, try := range []struct {
			up   upgrade
			path string
		}{
			{spdyUpgrade, base + "/exec?command=id&stdout=true"},
			{wsUpgrade, base + "/exec?command=id&stdout=true"},
			{pfUpgrade, base + "/portforward"},
		} {
			a := straightUpgrade(t, "admin", try.up, try.path, true)
			p.count(1, b2i(a.code >= 400 || a.status.Code >= 400), 0, 0)
			switch {
			case a.code == http.StatusSwitchingProtocols && try.up.name == wsUpgrade.name:
				if a.status.Code < 400 || !strings.Contains(a.status.Message, "instead of upgrading") {
					p.finding("%s %s: want a Status error on the error channel, got %q", pod, try.up.name, a.body)
				} else if !a.closed {
					p.finding("%s %s: exec-proxy kept the WebSocket open after the error", pod, try.up.name)
				}
			case a.code < 400 || a.status.Kind != "Status" || a.status.Code != a.code:
				p.finding("%s %s: want a Status error, got %d %q", pod, try.up.name, a.code, a.body)
			case !a.closed:
				p.finding("%s %s: exec-proxy kept the client's connection open after refusing it (%d %s)", pod, try.up.name, a.code, a.body)
			}
		}
		for _, c := range clients {
			res := kubectlRetried(t, c, "admin", "-n", reliabilityNamespace, "exec", pod, "--", "echo", "reached")
			p.count(1, b2i(res.code != 0), 0, 0)
			if res.code == 0 || res.stdout != "" {
				p.finding("%s %s: exit %d, stdout %q, stderr %s", pod, c.name, res.code, res.stdout, res.stderr)
			}
		}
	}
	// Whatever the client saw, the kubelet connection is done with after one answer.
	eventually(t, 20*time.Second, "the fake kubelet's connections to close", func() bool {
		return k.accepted.Load() == k.closedConns()
	})
	if k.trapHits.Load() != 0 || k.reused.Load() != 0 || k.leftOpen.Load() != 0 {
		p.finding("redirects followed: %d, requests on a reused connection: %d, connections left open: %d",
			k.trapHits.Load(), k.reused.Load(), k.leftOpen.Load())
	}
	p.figure("%d kubelet connections, %d redirects followed, %d reused, %d left open",
		k.accepted.Load(), k.trapHits.Load(), k.reused.Load(), k.leftOpen.Load())
	p.leakCheck(before)
}
