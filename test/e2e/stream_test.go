//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// session is a kubectl left running (attach, port-forward) with its stdin and output at hand.
type session struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  io.WriteCloser
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan struct{}
}

type lockedWriter struct{ s *session }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.out.Write(p)
}

// start runs kubectl without waiting for it; the test's cleanup kills it if still running.
func (c client) start(t *testing.T, rt route, user string, args ...string) *session {
	t.Helper()
	return c.startWithin(t, 2*time.Minute, rt, user, args...)
}

// startWithin is start, killing kubectl after d.
func (c client) startWithin(t *testing.T, d time.Duration, rt route, user string, args ...string) *session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	full := append([]string{"--kubeconfig", kubeconfig(user + rt.suffix)}, args...)
	s := &session{cmd: exec.CommandContext(ctx, c.path(), full...), cancel: cancel, done: make(chan struct{})}
	s.cmd.Env = append(os.Environ(), c.env...)
	stdin, err := s.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.stdin = stdin
	s.cmd.Stdout, s.cmd.Stderr = lockedWriter{s}, lockedWriter{s}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", c.path(), err)
	}
	t.Logf("%s (%s %s) as %s via %s: %v started", c.path(), c.version, strings.Join(c.env, " "), user, rt.name, args)
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *session) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// waitFor polls the output for want; fails with what was printed so far.
func (s *session) waitFor(t *testing.T, want string) {
	t.Helper()
	exited := false
	waitUntil(30*time.Second, func() bool {
		if strings.Contains(s.output(), want) {
			return true
		}
		select {
		case <-s.done:
			exited = true
		default:
		}
		return exited
	})
	switch {
	case strings.Contains(s.output(), want):
	case exited:
		t.Fatalf("kubectl exited (%v) without printing %q; output:\n%s", s.cmd.ProcessState, want, s.output())
	default:
		t.Fatalf("kubectl did not print %q in time; output:\n%s", want, s.output())
	}
}

// wait closes stdin and waits for kubectl to exit by itself; returns its exit code.
func (s *session) wait(t *testing.T) int {
	t.Helper()
	_ = s.stdin.Close()
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatalf("kubectl did not exit after stdin closed; output:\n%s", s.output())
		return -1
	}
}

func (s *session) stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(os.Interrupt)
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cancel()
		<-s.done
	}
	s.cancel()
}
