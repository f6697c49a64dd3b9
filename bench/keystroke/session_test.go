package keystroke

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/exec-proxy/exec-proxy/bench/internal/workload"
)

// testLimits only end a test whose fake hangs; no pass depends on them.
var testLimits = limits{ready: 20 * time.Second, resend: 50 * time.Millisecond, echo: 20 * time.Second, exit: 20 * time.Second, flow: 20 * time.Second}

// goroutinesBack fails the test unless the goroutines are back to before's count within 10 s.
func goroutinesBack(t *testing.T, before int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
	}
}

// The fakes stand for kubectl and the container together: cat over pipes echoes as exec -i's
// does; a terminal back in its normal mode echoes each byte itself and gives cat the line at
// Enter, as the container's terminal does with exec -it.
func TestTypeInto(t *testing.T) {
	for _, c := range []struct {
		name string
		argv []string
		tty  bool
		bulk bool
	}{
		{"-i: cat over pipes", []string{"cat"}, false, false},
		{"-it: cat on a terminal that echoes", []string{"sh", "-c", "stty sane; exec cat"}, true, false},
		{"-i loaded: a bulk download beside", []string{"cat"}, false, true},
		{"-it loaded: a bulk download beside", []string{"sh", "-c", "stty sane; exec cat"}, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			var bulk []string
			if c.bulk {
				bulk = workload.StreamUntilStdinCloses(1 << 20)
			}
			got, err := typeInto(context.Background(), c.argv, c.tty, bulk, 30, testLimits)
			if err != nil {
				t.Fatal(err)
			}
			if got.p50 <= 0 || got.p99 < got.p50 {
				t.Errorf("p50 %v ms, p99 %v ms", got.p50, got.p99)
			}
			if c.bulk != (got.bulkMiBps > 0) {
				t.Errorf("bulk %v MiB/s", got.bulkMiBps)
			}
			goroutinesBack(t, before)
		})
	}
}

// Each keystroke's round trip is counted once, to the first arrival of its byte: with the
// terminal echoing and cat writing the line back at Enter, a letter arrives twice.
func TestEchoesCountsFirstArrival(t *testing.T) {
	s, err := start(context.Background(), []string{"sh", "-c", "stty sane; exec cat"}, true, nil, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	if err := s.ready(); err != nil {
		t.Fatal(err)
	}
	rtts, err := s.echoes(3, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rtts) != 3 {
		t.Fatalf("%d round trips, want 3", len(rtts))
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	// The terminal's echo of "abc" and Enter's, then cat's line: the markers and "abc".
	if out := s.tail.String(); strings.Count(out, "abc") != 2 || !strings.HasSuffix(out, "abc") {
		t.Errorf("output %q", out)
	}
}

// A fake that never echoes, or exits at once, fails the session with a clear error, and leaves
// no process or goroutine behind.
func TestSessionFails(t *testing.T) {
	short := testLimits
	short.ready, short.exit = 300*time.Millisecond, 300*time.Millisecond
	for _, c := range []struct {
		name    string
		argv    []string
		tty     bool
		counted bool
		step    func(*session) error
		wantErr string
	}{
		{"hung, pipes", []string{"sleep", "60"}, false, false, (*session).ready, "waiting for the marker's echo: none in 300ms"},
		{"hung, pty", []string{"sleep", "60"}, true, false, (*session).ready, "waiting for the marker's echo: none in 300ms"},
		{"exits at once", []string{"sh", "-c", "echo no such pod >&2; exit 1"}, false, false, (*session).ready, `(output: "no such pod")`},
		{"does not exit after its input ends", []string{"sh", "-c", "cat; sleep 60"}, false, false, (*session).close, "still running 300ms after its input ended"},
		{"exits with an error", []string{"sh", "-c", "cat; echo gone >&2; exit 3"}, false, false, (*session).close, `exit status 3 (output: "gone")`},
		{"bulk that never flows", []string{"sleep", "60"}, false, true, func(s *session) error { s.lim.flow = 300 * time.Millisecond; return s.waitFlow() }, "less than 1 MiB in 300ms"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			var count *workload.Counter
			if c.counted {
				count = &workload.Counter{}
			}
			s, err := start(context.Background(), c.argv, c.tty, count, short)
			if err != nil {
				t.Fatal(err)
			}
			err = c.step(s)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("error %v, want one with %q", err, c.wantErr)
			}
			if s.cmd.ProcessState == nil {
				t.Error("the process was left running")
			}
			goroutinesBack(t, before)
		})
	}
}

// The bench's context ends every session at once.
func TestSessionCanceled(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := start(ctx, []string{"sh", "-c", "sleep 60 & sleep 60"}, false, nil, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := s.ready(); err == nil {
		t.Error("ready after the context ended")
	}
	goroutinesBack(t, before)
}
