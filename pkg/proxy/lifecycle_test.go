package proxy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
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
	eventuallyTrue(t, func() bool { return len(p.Sessions()) == 1 })
	code, st, h := rawUpgrade(t, srv, "spdy", "/p?container=a&command=echo&stdout=true")
	if code != http.StatusTooManyRequests || !strings.Contains(st.Message, "--max-sessions-per-user") || h.Get("Retry-After") == "" {
		t.Errorf("second session: got %d %q Retry-After %q, want 429 naming the flag", code, st.Message, h.Get("Retry-After"))
	}
	_ = held.Close()
	if err := <-done; err != nil {
		t.Fatalf("held session: %v", err)
	}
	eventuallyTrue(t, func() bool { return len(p.Sessions()) == 0 })
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
		{"idle", Limits{IdleTimeout: 300 * time.Millisecond}, false, ReasonIdleTimeout},
		{"max duration", Limits{MaxSessionDuration: 300 * time.Millisecond}, true, ReasonMaxDuration},
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
			eventuallyTrue(t, func() bool { return len(p.Sessions()) == 1 })
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
	eventuallyTrue(t, func() bool { return len(p.Sessions()) == 1 })
	live := p.Sessions()[0]

	drained := make(chan int, 1)
	go func() { drained <- p.Drain(context.Background(), 200*time.Millisecond) }()
	eventuallyTrue(t, func() bool {
		code, st, _ := rawUpgrade(t, srv, "spdy", "/p?container=a&command=echo&stdout=true")
		return code == http.StatusServiceUnavailable && strings.Contains(st.Message, "shutting down")
	})
	if n := <-drained; n != 1 {
		t.Errorf("Drain ended %d sessions, want 1", n)
	}
	<-done
	if got := live.EndReason(); got != ReasonProxyShutdown {
		t.Errorf("end reason %q, want %q", got, ReasonProxyShutdown)
	}
}
