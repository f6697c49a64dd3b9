package proxy

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/internal/poll"
	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
	"github.com/exec-proxy/exec-proxy/pkg/policy"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/internal/proxytest"
)

// A joiner's typing reaches the container as the session's stdin on every path a session takes,
// and the session's client sees who joined and left, with the name made terminal-safe.
func TestJoinTypesIntoSession(t *testing.T) {
	checkLeaks(t)
	for _, k := range []struct {
		name       string
		protocol   string
		webSockets bool // the kubelet serves v5 itself: passed through, not translated
	}{
		{"SPDY", "spdy", false},
		{"WebSocket translated", "websocket", false},
		{"WebSocket passed through", "websocket", true},
	} {
		t.Run(k.name, func(t *testing.T) {
			kubelet := newFakeKubeletWith(t, fakeKubeletOptions{webSockets: k.webSockets})
			n := nodeAt("n1", "127.0.0.1", kubelet.port(t))
			if k.webSockets {
				n.Status.DeclaredFeatures = []string{nodeconn.ExtendWebSocketsToKubelet}
			}
			p := newTestProxier(t, kubelet.caFile, Limits{}, runningPod("p", "n1", "a"), n)
			srv := front(t, p)
			// The owner runs cat, which echoes its stdin: the owner's and the joiner's.
			stdin, typing := io.Pipe()
			out := &proxytest.LockedBuffer{}
			q := url.Values{"command": {"cat"}, "container": {"a"}, "stdin": {"true"}, "stdout": {"true"}, "tty": {"true"}}
			u, _ := url.Parse(srv.URL + "/p?" + q.Encode())
			exec := executorFor(t, &restclient.Config{Host: srv.URL, WrapTransport: withUser("owner")}, k.protocol, u)
			done := make(chan error, 1)
			go func() {
				done <- exec.StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdin: stdin, Stdout: out, Tty: true})
			}()
			shown := func(text string) {
				t.Helper()
				poll.Until(t, func() bool { return strings.Contains(out.String(), text) })
			}
			owner := func(line string) {
				if _, err := typing.Write([]byte(line)); err != nil {
					t.Fatal(err)
				}
				shown(line)
			}
			// The owner's first keys go through the translator; later ones are written directly.
			owner("owner-1\n")
			sessions := p.Sessions()
			if len(sessions) != 1 {
				t.Fatalf("%d sessions, want the owner's", len(sessions))
			}
			j, err := sessions[0].Join("alice\x1b[2J")
			if err != nil {
				t.Fatal(err)
			}
			joined := "\r\n[exec-proxy: alice\\x1b[2J joined this session and can type]\r\n"
			shown(joined)
			owner("owner-2\n")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // fails, not hangs
			defer cancel()
			if err := j.Type(ctx, []byte("joiner-1\n")); err != nil {
				t.Fatal(err)
			}
			shown("joiner-1\n")
			owner("owner-3\n")
			j.Leave(klog.Background())
			left := "\r\n[exec-proxy: alice\\x1b[2J left]\r\n"
			shown(left)
			if j.Typed() != int64(len("joiner-1\n")) {
				t.Errorf("typed %d bytes, want %d", j.Typed(), len("joiner-1\n"))
			}
			_ = typing.Close()
			if err := <-done; err != nil {
				t.Fatalf("exec: %v", err)
			}
			got := out.String()
			if want := "owner-1\n" + joined + "owner-2\njoiner-1\nowner-3\n" + left; got != want {
				t.Errorf("the owner's terminal shows %q, want %q", got, want)
			}
			if strings.Contains(got, "\x1b") {
				t.Errorf("the joiner's name reached the owner's terminal unescaped: %q", got)
			}
		})
	}
}

// Only sessions with stdin and a TTY can be joined.
func TestJoinRefused(t *testing.T) {
	cases := []struct {
		name string
		id   Identity
	}{
		{"no TTY", Identity{Asked: Asked{Stdin: true}}},
		{"no stdin", Identity{Asked: Asked{TTY: true}}},
		{"not started", Identity{Asked: Asked{Stdin: true, TTY: true}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(context.Background(), tc.id, policy.Decision{}, 0, nil)
			defer s.cancel()
			if _, err := s.Join("alice"); !errors.Is(err, ErrNotJoinable) {
				t.Errorf("got %v, want %v", err, ErrNotJoinable)
			}
		})
	}
}
