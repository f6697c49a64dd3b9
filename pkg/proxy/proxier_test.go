package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"
	utilexec "k8s.io/utils/exec"

	"github.com/exec-proxy/exec-proxy/internal/poll"
	"github.com/exec-proxy/exec-proxy/internal/testcert"
	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
	"github.com/exec-proxy/exec-proxy/pkg/policy"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/internal/leaktest"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// front serves exec requests for pod ns/<name> to p, as the registry does, for the user in the
// X-Test-User header (authentication is not what these tests are about).
func front(t *testing.T, p *Proxier) *httptest.Server {
	srv, _ := frontWithRecords(t, p)
	return srv
}

// frontWithRecords is front that also hands out each request's audit record once it is served.
func frontWithRecords(t *testing.T, p *Proxier) (*httptest.Server, <-chan sessionaudit.Record) {
	return frontOf(t, p, execRequest)
}

// execRequest is the exec session req asks for: the pod is its path, the options its query.
func execRequest(req *http.Request) session.Request {
	q := req.URL.Query()
	return session.Request{Kind: session.KindExec, Namespace: "ns", Pod: strings.TrimPrefix(req.URL.Path, "/"), Exec: &corev1.PodExecOptions{
		Container: q.Get("container"), Command: q["command"], Stdin: q.Get("stdin") == "true",
		Stdout: q.Get("stdout") == "true", Stderr: q.Get("stderr") == "true", TTY: q.Get("tty") == "true"},
		Justification: q.Get(session.JustificationParam)}
}

// frontOf serves the session request asks for through p, as the user X-Test-User, and hands out
// each request's audit record once it is served.
func frontOf(t *testing.T, p *Proxier, request func(*http.Request) session.Request) (*httptest.Server, <-chan sessionaudit.Record) {
	t.Helper()
	h, records := frontHandler(p, request)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, records
}

// frontHandler is frontOf's handler.
func frontHandler(p *Proxier, request func(*http.Request) session.Request) (http.Handler, <-chan sessionaudit.Record) {
	records := make(chan sessionaudit.Record, 100)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r := request(req)
		attempt := sessionaudit.NewAttempt(req, string(r.Kind), r.Namespace, r.Pod)
		ctx := genericapirequest.WithUser(req.Context(), &user.DefaultInfo{Name: req.Header.Get("X-Test-User")})
		ctx = sessionaudit.WithAttempt(ctx, attempt)
		defer func() {
			send := func() {
				select {
				case records <- attempt.Snapshot():
				default:
				}
			}
			if !attempt.Detached() {
				send()
				return
			}
			// The session went on without the handler: its record is whole once it has an end.
			go func() {
				for deadline := time.Now().Add(20 * time.Second); attempt.Snapshot().End.IsZero() && time.Now().Before(deadline); {
					time.Sleep(5 * time.Millisecond)
				}
				send()
			}()
		}()
		h, err := p.Handler(ctx, r)
		if err != nil {
			session.WriteStatus(w, req, err)
			return
		}
		h.ServeHTTP(w, req.WithContext(ctx))
	}), records
}

func newTestProxier(t *testing.T, caFile string, limits Limits, objs ...interface{}) *Proxier {
	t.Helper()
	tr, err := nodeconn.NewTransport(nodeconn.TransportConfig{CAFile: caFile, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return New(newResolver(t, objs...), tr, limits)
}

// checkLeaks verifies, after every cleanup of the test, that no goroutine it started is left.
func checkLeaks(t *testing.T, ignore ...goleak.Option) { leaktest.Check(t, ignore...) }

type execCase struct {
	command []string
	stdin   io.Reader
	stdout  io.Writer // also gets the output, if set
	tty     bool
	reason  string // the session's justification, if any
}

// execVia runs one exec through the front server with client-go's executor for protocol.
func execVia(t *testing.T, srv *httptest.Server, protocol, userName string, c execCase) (string, error) {
	t.Helper()
	q := url.Values{"command": c.command, "container": {"a"}, "stdout": {"true"}}
	if c.stdin != nil {
		q.Set("stdin", "true")
	}
	if c.tty {
		q.Set("tty", "true")
	} else {
		q.Set("stderr", "true")
	}
	if c.reason != "" {
		q.Set(session.JustificationParam, c.reason)
	}
	u, _ := url.Parse(srv.URL + "/p?" + q.Encode())
	cfg := &restclient.Config{Host: srv.URL, WrapTransport: withUser(userName)}
	exec := executorFor(t, cfg, protocol, u)
	var out, errOut bytes.Buffer
	opts := remotecommand.StreamOptions{Stdout: &out, Tty: c.tty}
	if c.stdout != nil {
		opts.Stdout = io.MultiWriter(&out, c.stdout)
	}
	if !c.tty {
		opts.Stderr = &errOut
	}
	opts.Stdin = c.stdin
	if c.tty {
		opts.TerminalSizeQueue = &oneSize{size: &remotecommand.TerminalSize{Width: 120, Height: 40}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := exec.StreamWithContext(ctx, opts)
	return out.String(), err
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type oneSize struct{ size *remotecommand.TerminalSize }

func (q *oneSize) Next() *remotecommand.TerminalSize {
	s := q.size
	q.size = nil
	if s == nil {
		time.Sleep(50 * time.Millisecond) // the queue blocks between resizes; nil would end it
		return nil
	}
	return s
}

// TestExecThroughProxy runs each exec over SPDY and WebSocket v5, to a kubelet that takes SPDY
// only (v5 translated here) and to one that serves WebSocket itself (v5 passed through): what the
// client gets and what the audit records read passively are the same.
func TestExecThroughProxy(t *testing.T) {
	checkLeaks(t)
	for _, k := range []struct {
		name       string
		webSockets bool // the kubelet declares ExtendWebSocketsToKubelet and serves v5 itself
	}{{"kubelet-spdy", false}, {"kubelet-websocket", true}} {
		t.Run(k.name, func(t *testing.T) { testExecThroughProxy(t, k.webSockets) })
	}
}

func testExecThroughProxy(t *testing.T, webSockets bool) {
	kubelet := newFakeKubeletWith(t, fakeKubeletOptions{webSockets: webSockets})
	n := nodeAt("n1", "127.0.0.1", kubelet.port(t))
	if webSockets {
		n.Status.DeclaredFeatures = []string{nodeconn.ExtendWebSocketsToKubelet}
	}
	p := newTestProxier(t, kubelet.caFile, Limits{}, runningPod("p", "n1", "a", "b"), n)
	srv, records := frontWithRecords(t, p)
	cases := []struct {
		name     string
		exec     execCase
		stdin    string // a fresh reader of it for each run
		wantOut  string
		wantCode int
	}{
		{"stdout", execCase{command: []string{"echo", "hello", "world"}}, "", "hello world\n", 0},
		{"stdin echoed", execCase{command: []string{"cat"}}, strings.Repeat("x", 100<<10), strings.Repeat("x", 100<<10), 0},
		{"stdin counted", execCase{command: []string{"count"}}, strings.Repeat("y", 8<<20), fmt.Sprintln(8 << 20), 0},
		{"exit code", execCase{command: []string{"exit", "7"}}, "", "", 7},
		{"tty size", execCase{command: []string{"size"}, tty: true}, "", "40 120", 0},
	}
	for _, protocol := range []string{"spdy", "websocket"} {
		for _, tc := range cases {
			t.Run(protocol+"/"+tc.name, func(t *testing.T) {
				ec := tc.exec
				if tc.stdin != "" {
					ec.stdin = strings.NewReader(tc.stdin)
				}
				out, err := execVia(t, srv, protocol, "alice", ec)
				code := 0
				var exitErr utilexec.ExitError
				if errors.As(err, &exitErr) {
					code = exitErr.ExitStatus()
				} else if err != nil {
					t.Fatalf("exec: %v", err)
				}
				if code != tc.wantCode || !strings.Contains(out, tc.wantOut) {
					t.Errorf("got exit %d and %d bytes %.40q, want exit %d and %.40q", code, len(out), out, tc.wantCode, tc.wantOut)
				}
				// The kubelet was asked for what it serves: v5 itself, or SPDY from the translator.
				wantUpgrade := "SPDY/3.1"
				if protocol == "websocket" && webSockets {
					wantUpgrade = "websocket"
				}
				if h := kubelet.header.Load(); h == nil || !strings.EqualFold(h.Get("Upgrade"), wantUpgrade) {
					t.Errorf("the kubelet was asked to upgrade to %q, want %q", h.Get("Upgrade"), wantUpgrade)
				}
				// What the proxy read passively from the frames: exit code and payload per stream.
				var rec sessionaudit.Record
				select {
				case rec = <-records:
				case <-time.After(10 * time.Second):
					t.Fatal("no record")
				}
				wantStreams := map[string]int64{"stdout": int64(len(out)), "stdin": int64(len(tc.stdin))}
				if rec.ExitCode != strconv.Itoa(tc.wantCode) || rec.StreamBytes["stdout"] != wantStreams["stdout"] ||
					rec.StreamBytes["stdin"] != wantStreams["stdin"] || rec.StreamBytes["stderr"] != 0 {
					t.Errorf("record: exit %q, streams %v; want exit %d, streams %v", rec.ExitCode, rec.StreamBytes, tc.wantCode, wantStreams)
				}
				if tc.exec.tty && rec.Resizes < 1 {
					t.Errorf("record: %d resizes, want the first size", rec.Resizes)
				}
			})
		}
	}
	// The proxy side ends just after the client has its exit status.
	poll.Until(t, func() bool { return len(p.Sessions()) == 0 })
}

// rawUpgrade sends an upgrade request as kubectl would and returns the code and the Status.
func rawUpgrade(t *testing.T, srv *httptest.Server, protocol, path string) (int, metav1.Status, http.Header) {
	t.Helper()
	method, headers := http.MethodPost, map[string]string{"Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "v4.channel.k8s.io"}
	if protocol == "websocket" {
		method, headers = http.MethodGet, map[string]string{"Upgrade": "websocket", "Sec-WebSocket-Version": "13",
			"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "v5.channel.k8s.io"}
	}
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("X-Test-User", "alice")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st metav1.Status
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(body, &st); err != nil || st.Kind != "Status" {
			t.Errorf("%d with a body that is not a Status: %q", resp.StatusCode, body)
		}
		if !resp.Close {
			t.Errorf("%d: a refused upgrade must close its connection", resp.StatusCode)
		}
	}
	return resp.StatusCode, st, resp.Header
}

func portOf(t *testing.T, rawURL string) int32 {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(u.Port())
	return int32(p)
}

func TestKubeletErrorsAreStatuses(t *testing.T) {
	checkLeaks(t)
	kubelet := newFakeKubelet(t)
	otherCA, _ := testcert.SelfSigned(t, "other-ca")
	otherCAFile := writeCA(t, otherCA) // did not sign the kubelet's certificate
	dead := httptest.NewServer(http.NotFoundHandler())
	deadPort := portOf(t, dead.URL)
	dead.Close()
	objs := []interface{}{
		runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t)),
		runningPod("on-dead", "n2", "a"), nodeAt("n2", "127.0.0.1", deadPort),
		runningPod("on-missing", "n3", "a"),
		runningPod("refused", "n1", "gone"),
		// A name the kubelet's certificate does not carry: verified against the address, not only the CA.
		runningPod("by-name", "n4", "a"), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n4"}, Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "localhost"}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: kubelet.port(t)}}}},
	}
	cases := []struct {
		name, pod, ca string
		code          int
		message       string
	}{
		{"untrusted certificate", "p", otherCAFile, http.StatusBadGateway,
			fmt.Sprintf(`kubelet on node "n1" (127.0.0.1:%d) failed TLS certificate verification`, kubelet.port(t))},
		{"certificate not for the address", "by-name", kubelet.caFile, http.StatusBadGateway,
			fmt.Sprintf(`kubelet on node "n4" (localhost:%d) failed TLS certificate verification`, kubelet.port(t))},
		{"unreachable", "on-dead", kubelet.caFile, http.StatusServiceUnavailable,
			fmt.Sprintf(`kubelet on node "n2" (127.0.0.1:%d) is unreachable`, deadPort)},
		{"node not found", "on-missing", kubelet.caFile, http.StatusServiceUnavailable, `node "n3" not found`},
		{"pod not found", "nope", kubelet.caFile, http.StatusNotFound, `pods "nope" not found`},
		{"container not found", "p?container=z", kubelet.caFile, http.StatusBadRequest, "container z is not valid for pod p, choose one of: [a]"},
		// Not echoed as the kubelet's text: a Status, and a 502 since exec-proxy's request failed.
		{"kubelet refuses", "refused?container=gone", kubelet.caFile, http.StatusBadGateway,
			fmt.Sprintf(`kubelet on node "n1" (127.0.0.1:%d) answered 500 Internal Server Error instead of upgrading: pod does not exist`, kubelet.port(t))},
	}
	for _, tc := range cases {
		for _, protocol := range []string{"spdy", "websocket"} {
			if tc.pod == "refused?container=gone" && protocol == "websocket" {
				continue // the translator upgrades first: TestKubeletRefusesTranslatedUpgrade
			}
			t.Run(tc.name+"/"+protocol, func(t *testing.T) {
				srv := front(t, newTestProxier(t, tc.ca, Limits{}, objs...))
				path := "/" + tc.pod
				if !strings.Contains(path, "?") {
					path += "?container=a"
				}
				code, st, _ := rawUpgrade(t, srv, protocol, path+"&command=echo&stdout=true")
				if code != tc.code || int(st.Code) != tc.code || !strings.Contains(st.Message, tc.message) {
					t.Errorf("got %d %q, want %d with %q", code, st.Message, tc.code, tc.message)
				}
			})
		}
	}
}

func withUser(name string) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			req.Header.Set("X-Test-User", name)
			return rt.RoundTrip(req)
		})
	}
}

// With --kubelet-token-file the token reaches the kubelet on every path: the upgrade-aware proxy
// (SPDY) and the stream translator (WebSocket), whose connection to the kubelet adds the token.
func TestKubeletBearerToken(t *testing.T) {
	checkLeaks(t)
	kubelet := newFakeKubeletWithToken(t, "s3cret")
	tokenFile := filepath.Join(t.TempDir(), "token")
	objs := []interface{}{runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t))}
	cases := []struct {
		name, token string
		wantErr     string
	}{
		{"right token", "s3cret\n", ""},
		{"wrong token", "guess", "Unauthorized"},
	}
	for _, tc := range cases {
		for _, protocol := range []string{"spdy", "websocket"} {
			t.Run(tc.name+"/"+protocol, func(t *testing.T) {
				if err := os.WriteFile(tokenFile, []byte(tc.token), 0o600); err != nil {
					t.Fatal(err)
				}
				tr, err := nodeconn.NewTransport(nodeconn.TransportConfig{CAFile: kubelet.caFile, TokenFile: tokenFile})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(tr.CloseIdleConnections)
				srv := front(t, New(newResolver(t, objs...), tr, Limits{}))
				out, err := execVia(t, srv, protocol, "alice", execCase{command: []string{"echo", "authorized"}})
				if tc.wantErr == "" && (err != nil || out != "authorized\n") {
					t.Errorf("got %q %v", out, err)
				}
				if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
					t.Errorf("got %q %v, want an error with %q", out, err, tc.wantErr)
				}
			})
		}
	}
}

// With auditing on, a session whose request has no audit attempt for it is refused before anything
// else: it would run with no record, or another session's.
func TestHandlerRefusesSessionWithoutItsAttempt(t *testing.T) {
	r := session.Request{Kind: session.KindExec, Namespace: "ns", Pod: "p", Exec: &corev1.PodExecOptions{Command: []string{"sh"}, Stdout: true}}
	req := httptest.NewRequest(http.MethodPost, "/exec", nil)
	cases := []struct {
		name    string
		attempt *sessionaudit.Attempt
		refused bool
	}{
		{"its own attempt", sessionaudit.NewAttempt(req, "exec", "ns", "p"), false},
		{"no attempt", nil, true},
		{"another pod's attempt", sessionaudit.NewAttempt(req, "exec", "ns", "q"), true},
		{"another kind's attempt", sessionaudit.NewAttempt(req, "portforward", "ns", "p"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := New(newResolver(t, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", 10250)), nil, Limits{})
			p.Audit = sessionaudit.NewAuditor(&auditBackend{}, sessionaudit.FailClosed)
			ctx := genericapirequest.WithUser(context.Background(), &user.DefaultInfo{Name: "alice"})
			if tc.attempt != nil {
				ctx = sessionaudit.WithAttempt(ctx, tc.attempt)
			}
			h, err := p.Handler(ctx, r)
			if !tc.refused {
				if err != nil || h == nil || len(p.Sessions()) != 1 {
					t.Fatalf("got %v, %d sessions", err, len(p.Sessions()))
				}
				return
			}
			if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "audit attempt is missing") || h != nil {
				t.Fatalf("got %v, want a 500 saying the audit attempt is missing", err)
			}
			if n := len(p.Sessions()); n != 0 {
				t.Errorf("%d sessions admitted", n)
			}
		})
	}
}

// executorFor is client-go's executor for protocol ("websocket" or SPDY), as kubectl makes it.
func executorFor(t *testing.T, cfg *restclient.Config, protocol string, u *url.URL) remotecommand.Executor {
	t.Helper()
	var exec remotecommand.Executor
	var err error
	if protocol == "websocket" {
		exec, err = remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
	} else {
		exec, err = remotecommand.NewSPDYExecutor(cfg, "POST", u)
	}
	if err != nil {
		t.Fatal(err)
	}
	return exec
}

// policyOf is a session policy source holding rules.
func policyOf(t *testing.T, rules ...policy.Rule) *policy.Source {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := policy.NewSource(path, func([]byte) (*policy.Policy, error) { return policy.New(rules) })
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// The session policy decides once the pod is known, by its labels among the rest: a session its
// rule refuses is a 403 naming the rule, with the rule and the reason in its record, and nothing
// reaches the kubelet; an allowed one carries its rule and its reason into its start record.
func TestHandlerAppliesPolicy(t *testing.T) {
	readOnly := policy.Rule{Name: "db-read-only", Stdin: policy.Deny,
		Match: policy.Match{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}
	cases := []struct {
		name    string
		app     string // the pod's app label
		exec    execCase
		refused bool
		rule    string // the session's, in its records
	}{
		{"stdin under a read-only rule", "db", execCase{command: []string{"cat"}, stdin: strings.NewReader("x"), reason: "INC-1"}, true, "db-read-only"},
		{"no stdin under a read-only rule", "db", execCase{command: []string{"echo", "hi"}, reason: "INC-1"}, false, "db-read-only"},
		{"a pod no rule selects", "web", execCase{command: []string{"cat"}, stdin: strings.NewReader("x"), reason: "INC-1"}, false, ""},
		{"no reason given", "db", execCase{command: []string{"echo", "hi"}}, false, "db-read-only"},
	}
	refusedTotal := func() float64 {
		v, err := testutil.GetCounterMetricValue(sessionsTotal.WithLabelValues(string(session.KindExec), "refused"))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			kubelet := newFakeKubelet(t)
			pod := runningPod("p", "n1", "a")
			pod.Labels = map[string]string{"app": tc.app}
			p := newTestProxier(t, kubelet.caFile, Limits{}, pod, nodeAt("n1", "127.0.0.1", kubelet.port(t)))
			p.Policy = policyOf(t, readOnly)
			b := &auditBackend{}
			p.Audit = sessionaudit.NewAuditor(b, sessionaudit.FailClosed)
			srv, records := frontWithRecords(t, p)
			refusedBefore := refusedTotal()

			if tc.refused {
				path := "/p?container=a&command=cat&stdin=true&stdout=true&reason=" + tc.exec.reason
				code, st, _ := rawUpgrade(t, srv, "spdy", path)
				if code != http.StatusForbidden || st.Reason != metav1.StatusReasonForbidden || !strings.Contains(st.Message, `session policy rule "`+tc.rule+`"`) {
					t.Errorf("got %d %s %q, want a 403 naming the rule", code, st.Reason, st.Message)
				}
				if h := kubelet.header.Load(); h != nil {
					t.Errorf("the kubelet was asked: %v", *h)
				}
			} else if _, err := execVia(t, srv, "spdy", "alice", tc.exec); err != nil {
				t.Fatalf("exec: %v", err)
			}
			var rec sessionaudit.Record
			select {
			case rec = <-records:
			case <-time.After(10 * time.Second):
				t.Fatal("no record")
			}
			if rec.PolicyRule != tc.rule || rec.Justification != tc.exec.reason {
				t.Errorf("record: rule %q, reason %q; want %q, %q", rec.PolicyRule, rec.Justification, tc.rule, tc.exec.reason)
			}
			if got, want := refusedTotal()-refusedBefore, map[bool]float64{true: 1}[tc.refused]; got != want {
				t.Errorf("%v sessions counted refused, want %v", got, want)
			}
			start := b.record("start")
			switch {
			case tc.refused && start != nil:
				t.Errorf("a refused session has a start record: %v", start)
			case !tc.refused && (start == nil || start[sessionaudit.AnnotationPolicyRule] != tc.rule || start[sessionaudit.AnnotationJustification] != tc.exec.reason):
				t.Errorf("start record %v, want rule %q and reason %q", start, tc.rule, tc.exec.reason)
			}
		})
	}
}

// A session's bandwidth limit, each way, is its policy rule's, else the flag's.
func TestHandlerBandwidthLimit(t *testing.T) {
	cases := []struct {
		name       string
		flag, rule int64
		want       rate.Limit // 0: no limiter
	}{
		{"the rule's, no flag", 0, 1000, 1000},
		{"the rule's, below the flag's", 5000, 1000, 1000},
		{"the rule's, above the flag's", 1000, 5000, 5000},
		{"the flag's, the rule sets none", 5000, 0, 5000},
		{"neither", 0, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := New(newResolver(t, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", 10250)), nil, Limits{MaxBytesPerSecSession: tc.flag})
			p.Policy = policyOf(t, policy.Rule{Name: "r", Limits: policy.Limits{MaxBytesPerSec: tc.rule}})
			ctx := genericapirequest.WithUser(context.Background(), &user.DefaultInfo{Name: "alice"})
			r := session.Request{Kind: session.KindExec, Namespace: "ns", Pod: "p", Exec: &corev1.PodExecOptions{Command: []string{"sh"}, Stdout: true}}
			if _, err := p.Handler(ctx, r); err != nil {
				t.Fatal(err)
			}
			s := p.Sessions()[0]
			limit := func(l *rate.Limiter) rate.Limit {
				if l == nil {
					return 0
				}
				return l.Limit()
			}
			if in, out := limit(s.traffic.in), limit(s.traffic.out); in != tc.want || out != tc.want {
				t.Errorf("limits in %v, out %v; want %v", in, out, tc.want)
			}
		})
	}
}

// Run sweeps while a session policy is set, whose rules may limit sessions the flags do not; with
// neither it has nothing to do and returns at once.
func TestRunSweepsForPolicy(t *testing.T) {
	cases := []struct {
		name   string
		policy bool
	}{
		{"a policy, no flag limits", true},
		{"neither", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			p := New(newResolver(t), nil, Limits{})
			if tc.policy {
				p.Policy = policyOf(t, policy.Rule{Name: "r"})
			}
			// Past its rule's maximum duration: only a sweep ends it.
			s := testSession(t, Identity{Kind: session.KindExec}, 0)
			s.decision.Limits.MaxDuration = metav1.Duration{Duration: time.Nanosecond}
			if err := p.sessions.add(s); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			returned := make(chan struct{})
			go func() { p.Run(ctx); close(returned) }()
			if !tc.policy {
				select {
				case <-returned:
				case <-time.After(20 * time.Second):
					t.Fatal("Run did not return")
				}
				return
			}
			select {
			case <-s.ctx.Done():
			case <-returned:
				t.Fatal("Run returned before its context ended")
			case <-time.After(20 * time.Second):
				t.Fatal("the session past its rule's maximum duration was not ended")
			}
			if got := s.EndReason(); got != session.ReasonMaxDuration {
				t.Errorf("end reason %q, want %q", got, session.ReasonMaxDuration)
			}
			select {
			case <-returned:
				t.Fatal("Run returned before its context ended")
			default:
			}
			cancel()
			<-returned
		})
	}
}

// A rule's caps on concurrent sessions reach the admitter: past them, a session is a 429 naming
// the rule, counted in throttled_total by the cap and in sessions_total as throttled.
func TestHandlerRuleCaps(t *testing.T) {
	cases := []struct {
		name    string
		limits  policy.Limits
		second  string // the user of the second session
		refused bool
		reason  string // throttled_total's
	}{
		{"sessions", policy.Limits{MaxSessions: 1}, "bob", true, "policy-rule"},
		{"sessions per user", policy.Limits{MaxSessionsPerUser: 1}, "alice", true, "policy-rule-per-user"},
		{"sessions per user, another user", policy.Limits{MaxSessionsPerUser: 1}, "bob", false, "policy-rule-per-user"},
	}
	counter := func(c metrics.CounterMetric) float64 {
		v, err := testutil.GetCounterMetricValue(c)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := New(newResolver(t, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", 10250)), nil, Limits{})
			p.Policy = policyOf(t, policy.Rule{Name: "capped", Limits: tc.limits})
			r := session.Request{Kind: session.KindExec, Namespace: "ns", Pod: "p", Exec: &corev1.PodExecOptions{Command: []string{"sh"}, Stdout: true}}
			open := func(name string) error {
				_, err := p.Handler(genericapirequest.WithUser(context.Background(), &user.DefaultInfo{Name: name}), r)
				return err
			}
			if err := open("alice"); err != nil {
				t.Fatal(err)
			}
			throttled, sessions := counter(throttledTotal.WithLabelValues(tc.reason)), counter(sessionsTotal.WithLabelValues(string(session.KindExec), "throttled"))
			err := open(tc.second)
			want := map[bool]float64{true: 1, false: 0}[tc.refused]
			if got := counter(throttledTotal.WithLabelValues(tc.reason)) - throttled; got != want {
				t.Errorf("throttled_total{reason=%q} rose by %v, want %v", tc.reason, got, want)
			}
			if got := counter(sessionsTotal.WithLabelValues(string(session.KindExec), "throttled")) - sessions; got != want {
				t.Errorf("sessions_total{outcome=throttled} rose by %v, want %v", got, want)
			}
			if !tc.refused {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
				return
			}
			if !apierrors.IsTooManyRequests(err) || !strings.Contains(err.Error(), `session policy rule "capped"`) {
				t.Errorf("got %v, want a 429 naming the rule", err)
			}
		})
	}
}
