package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/plugin/pkg/audit/fake"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/exec-proxy/exec-proxy/internal/poll"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

func TestConcurrencyLimitIs429(t *testing.T) {
	checkLeaks(t)
	kubelet := newFakeKubelet(t)
	p := newTestProxier(t, kubelet.caFile, Limits{MaxSessionsPerUser: 1},
		runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t)))
	srv := front(t, p)

	stdin, held := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := execVia(t, srv, "spdy", "alice", execCase{command: []string{"cat"}, stdin: stdin})
		done <- err
	}()
	poll.Until(t, func() bool { return len(p.Sessions()) == 1 })
	code, st, h := rawUpgrade(t, srv, "spdy", "/p?container=a&command=echo&stdout=true")
	if code != http.StatusTooManyRequests || !strings.Contains(st.Message, "--max-sessions-per-user") || h.Get("Retry-After") == "" {
		t.Errorf("second session: got %d %q Retry-After %q, want 429 naming the flag", code, st.Message, h.Get("Retry-After"))
	}
	_ = held.Close()
	if err := <-done; err != nil {
		t.Fatalf("held session: %v", err)
	}
	poll.Until(t, func() bool { return len(p.Sessions()) == 0 })
	if out, err := execVia(t, srv, "spdy", "alice", execCase{command: []string{"echo", "again"}}); err != nil || out != "again\n" {
		t.Errorf("after the first ended: %q %v", out, err)
	}
}

// A session that outlives a limit is ended by the proxy, with the limit as its reason.
func TestSessionsEndedByLimits(t *testing.T) {
	cases := []struct {
		name   string
		limits Limits
		feed   bool // keep the session busy, so only the duration limit applies
		reason string
	}{
		{"idle", Limits{IdleTimeout: 300 * time.Millisecond}, false, session.ReasonIdleTimeout},
		{"max duration", Limits{MaxSessionDuration: 300 * time.Millisecond}, true, session.ReasonMaxDuration},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			kubelet := newFakeKubelet(t)
			p := newTestProxier(t, kubelet.caFile, tc.limits, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t)))
			ctx, cancel := context.WithCancel(context.Background())
			runDone := make(chan struct{})
			go func() { p.Run(ctx); close(runDone) }()
			t.Cleanup(func() { cancel(); <-runDone })
			srv := front(t, p)

			stdin, feeder := io.Pipe()
			t.Cleanup(func() { _ = feeder.Close() })
			if tc.feed {
				go func() {
					for {
						if _, err := feeder.Write([]byte("tick\n")); err != nil {
							return
						}
						time.Sleep(20 * time.Millisecond)
					}
				}()
			}
			done := make(chan struct{})
			go func() {
				_, _ = execVia(t, srv, "spdy", "alice", execCase{command: []string{"cat"}, stdin: stdin})
				close(done)
			}()
			poll.Until(t, func() bool { return len(p.Sessions()) == 1 })
			s := p.Sessions()[0]
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("session was not ended")
			}
			if got := s.EndReason(); got != tc.reason {
				t.Errorf("end reason %q, want %q", got, tc.reason)
			}
		})
	}
}

// Drain refuses new sessions at once (503) and ends live ones when the grace period is over.
func TestDrain(t *testing.T) {
	checkLeaks(t)
	kubelet := newFakeKubelet(t)
	p := newTestProxier(t, kubelet.caFile, Limits{}, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t)))
	srv := front(t, p)
	stdin, feeder := io.Pipe()
	t.Cleanup(func() { _ = feeder.Close() })
	done := make(chan struct{})
	go func() {
		_, _ = execVia(t, srv, "spdy", "alice", execCase{command: []string{"cat"}, stdin: stdin})
		close(done)
	}()
	poll.Until(t, func() bool { return len(p.Sessions()) == 1 })
	live := p.Sessions()[0]

	drained := make(chan int, 1)
	go func() { drained <- p.Drain(context.Background(), 200*time.Millisecond) }()
	poll.Until(t, func() bool {
		code, st, _ := rawUpgrade(t, srv, "spdy", "/p?container=a&command=echo&stdout=true")
		return code == http.StatusServiceUnavailable && strings.Contains(st.Message, "shutting down")
	})
	if n := <-drained; n != 1 {
		t.Errorf("Drain ended %d sessions, want 1", n)
	}
	<-done
	if got := live.EndReason(); got != session.ReasonProxyShutdown {
		t.Errorf("end reason %q, want %q", got, session.ReasonProxyShutdown)
	}
}

// cutter forwards TCP connections to target until cut, which breaks them all, as a dying kubelet.
type cutter struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutter(t *testing.T, target string) *cutter {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{Listener: l}
	t.Cleanup(func() { _ = l.Close(); c.cut() })
	go func() {
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			backend, err := net.Dial("tcp", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, client, backend)
			c.mu.Unlock()
			go func() { _, _ = io.Copy(backend, client); _ = backend.Close() }()
			go func() { _, _ = io.Copy(client, backend); _ = client.Close() }()
		}
	}()
	return c
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		_ = conn.Close()
	}
}

// A kubelet that vanishes mid-session is not an exit: the translator tells WebSocket clients
// "success" (an empty error stream), but the record says the kubelet disconnected. The proxy ends
// the session and closes the client's connection; how soon a client notices is up to it
// (client-go's SPDY client may wait on streams that never close), so the client is cancelled here.
func TestKubeletVanishes(t *testing.T) {
	for _, protocol := range []string{"spdy", "websocket"} {
		t.Run(protocol, func(t *testing.T) {
			// The peers linger after the cut, not exec-proxy: the fake kubelet waits out its stream
			// creation timeout, client-go its stream waits and WebSocket heartbeat.
			checkLeaks(t, goleak.IgnoreTopFunction("k8s.io/cri-streaming/pkg/streaming/remotecommand.(*v4ProtocolHandler).waitForStreams"),
				goleak.IgnoreTopFunction("github.com/moby/spdystream.(*Stream).WaitTimeout"),
				goleak.IgnoreTopFunction("k8s.io/client-go/tools/remotecommand.(*heartbeat).start"))
			kubelet := newFakeKubelet(t)
			cut := newCutter(t, kubelet.Listener.Addr().String())
			p := newTestProxier(t, kubelet.caFile, Limits{}, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", portOf(t, "tcp://"+cut.Addr().String())))
			srv, records := frontWithRecords(t, p)
			stdin, feeder := io.Pipe()
			t.Cleanup(func() { _ = feeder.Close() })
			stdout, output := io.Pipe()
			t.Cleanup(func() { _ = stdout.Close() })
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			t.Cleanup(func() { cancel(); <-done })
			go func() {
				defer close(done)
				u, _ := url.Parse(srv.URL + "/p?container=a&command=cat&stdin=true&stdout=true")
				cfg := &restclient.Config{Host: srv.URL, WrapTransport: withUser("alice")}
				exec, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
				if protocol == "websocket" {
					exec, err = remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
				}
				if err == nil {
					_ = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: output})
				}
			}()
			// Cut only once the whole path is up: what is typed comes back from the container.
			go func() { _, _ = feeder.Write([]byte("x")) }()
			if _, err := io.ReadFull(stdout, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			cut.cut()
			var rec sessionaudit.Record
			select {
			case rec = <-records:
			case <-time.After(20 * time.Second):
				t.Fatal("the session did not end")
			}
			if !strings.HasPrefix(rec.ExitCode, "unknown") || rec.Reason != session.ReasonKubeletClosed {
				t.Errorf("exit %q, reason %q; want unknown, %q (%+v)", rec.ExitCode, rec.Reason, session.ReasonKubeletClosed, rec)
			}
		})
	}
}

// A kubelet that refuses the translator's upgrade ends the session at once, with the kubelet's
// answer in the record: the relay must not wait on a connection the kubelet keeps open.
func TestKubeletRefusesTranslatedUpgrade(t *testing.T) {
	checkLeaks(t)
	kubelet := newFakeKubelet(t)
	p := newTestProxier(t, kubelet.caFile, Limits{}, runningPod("p", "n1", "gone"), nodeAt("n1", "127.0.0.1", kubelet.port(t)))
	srv, records := frontWithRecords(t, p)
	u, _ := url.Parse(srv.URL + "/p?container=gone&command=true&stdout=true")
	exec, err := remotecommand.NewWebSocketExecutor(&restclient.Config{Host: srv.URL, WrapTransport: withUser("alice")}, "GET", u.String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: io.Discard}); err == nil || !strings.Contains(err.Error(), `kubelet on node "n1"`) ||
		!strings.Contains(err.Error(), "answered 500 Internal Server Error instead of upgrading: pod does not exist") {
		t.Errorf("client got %v, want the kubelet's refusal", err)
	}
	select {
	case rec := <-records:
		if !strings.Contains(rec.ExitCode, "the kubelet answered 500") {
			t.Errorf("exit code %q", rec.ExitCode)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the session did not end")
	}
}

// The request's handler returns once the client's connection is the session's: the session runs
// on without it, to its normal end, with its end record.
func TestHandlerReturnsWhileSessionRuns(t *testing.T) {
	for _, protocol := range []string{"spdy", "websocket"} {
		t.Run(protocol, func(t *testing.T) {
			checkLeaks(t)
			kubelet := newFakeKubelet(t)
			p := newTestProxier(t, kubelet.caFile, Limits{}, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t)))
			b := &auditBackend{}
			p.Audit = sessionaudit.NewAuditor(b, sessionaudit.FailClosed)
			returned := make(chan struct{})
			inner, _ := frontWithRecords(t, p)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				defer close(returned)
				inner.Config.Handler.ServeHTTP(w, req)
			}))
			t.Cleanup(srv.Close)

			stdin, held := io.Pipe()
			done := make(chan string, 1)
			go func() {
				out, _ := execVia(t, srv, protocol, "alice", execCase{command: []string{"cat"}, stdin: stdin})
				done <- out
			}()
			select {
			case <-returned:
			case <-time.After(10 * time.Second):
				t.Fatal("the handler did not return while the session ran")
			}
			if n := len(p.Sessions()); n != 1 {
				t.Fatalf("%d sessions after the handler returned, want the one still running", n)
			}
			_, _ = io.WriteString(held, "still here\n")
			_ = held.Close()
			if out := <-done; out != "still here\n" {
				t.Errorf("output %q", out)
			}
			poll.Until(t, func() bool { return len(p.Sessions()) == 0 })
			poll.Until(t, func() bool { return b.kinds() == "start,end" })
		})
	}
}

// auditBackend keeps the kinds and the annotations of the session audit records written.
type auditBackend struct {
	fake.Backend
	mu          sync.Mutex
	events      []string
	annotations []map[string]string
	all         []*auditinternal.Event
}

func (b *auditBackend) ProcessEvents(ev ...*auditinternal.Event) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range ev {
		b.events = append(b.events, e.Annotations[sessionaudit.AnnotationRecord])
		b.annotations = append(b.annotations, e.Annotations)
		b.all = append(b.all, e)
	}
	return true
}

// record is the annotations of the first record of kind written, or nil.
func (b *auditBackend) record(kind string) map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, k := range b.events {
		if k == kind {
			return b.annotations[i]
		}
	}
	return nil
}

func (b *auditBackend) kinds() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.events, ",")
}

// A panic in a detached session (here the audit backend's, as the 101 goes out) is logged, not
// fatal, and the session still ends: its slot is freed and its end record written.
func TestPanicInSessionStillEnds(t *testing.T) {
	// The kubelet's side waits for the streams until its own timeout: the client never opened them.
	checkLeaks(t, goleak.IgnoreTopFunction("k8s.io/cri-streaming/pkg/streaming/remotecommand.(*v4ProtocolHandler).waitForStreams"))
	kubelet := newFakeKubelet(t)
	p := newTestProxier(t, kubelet.caFile, Limits{}, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t)))
	b := &panickingAudit{panicOn: "start"}
	p.Audit = sessionaudit.NewAuditor(b, sessionaudit.FailClosed)
	srv, _ := frontWithRecords(t, p)
	if _, err := execVia(t, srv, "spdy", "alice", execCase{command: []string{"echo", "hi"}}); err == nil {
		t.Error("the session whose start panicked went on")
	}
	poll.Until(t, func() bool { return len(p.Sessions()) == 0 })
	poll.Until(t, func() bool { return strings.HasSuffix(b.kinds(), "end") })
}

// panickingAudit panics on the first record of one kind, and keeps the others' kinds.
type panickingAudit struct {
	auditBackend
	panicOn  string
	panicked bool
}

func (b *panickingAudit) ProcessEvents(ev ...*auditinternal.Event) bool {
	b.mu.Lock()
	for _, e := range ev {
		if e.Annotations[sessionaudit.AnnotationRecord] == b.panicOn && !b.panicked {
			b.panicked = true
			b.mu.Unlock()
			panic("audit backend broke")
		}
	}
	b.mu.Unlock()
	return b.auditBackend.ProcessEvents(ev...)
}
