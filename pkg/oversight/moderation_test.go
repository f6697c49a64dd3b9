package oversight

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"
)

func TestModeration(t *testing.T) {
	const grace = 30 * time.Second
	type step struct {
		do   string        // arrive NAME, leave N (the N-th arrival, from 0), start, stop, wait D
		wait time.Duration // for wait
	}
	cases := []struct {
		name          string
		steps         []step
		present, lost bool // present: a moderator is, as Present tells
		alone         int  // times the Alone hook ran
		moderators    []string
		timer         bool // a grace period's timer is left running
	}{
		{name: "no moderator: the session waits", steps: nil},
		{name: "one arrives", steps: []step{{do: "arrive bob"}}, present: true, moderators: []string{"bob"}},
		{name: "the last leaves: lost after the grace period",
			steps: []step{{do: "arrive bob"}, {do: "start"}, {do: "leave 0"}, {do: "wait", wait: grace}}, lost: true, alone: 1},
		{name: "within the grace period: not lost",
			steps: []step{{do: "arrive bob"}, {do: "start"}, {do: "leave 0"}, {do: "wait", wait: grace - time.Second}}, alone: 1, timer: true},
		{name: "one comes back within the grace period",
			steps:   []step{{do: "arrive bob"}, {do: "start"}, {do: "leave 0"}, {do: "wait", wait: grace / 2}, {do: "arrive carol"}, {do: "wait", wait: grace}},
			present: true, alone: 1, moderators: []string{"carol"}},
		{name: "one of two leaves",
			steps:   []step{{do: "arrive bob"}, {do: "arrive carol"}, {do: "start"}, {do: "leave 0"}, {do: "wait", wait: 2 * grace}},
			present: true, moderators: []string{"carol"}},
		{name: "an earlier grace period's timer does not end a later one early",
			steps: []step{{do: "arrive bob"}, {do: "start"}, {do: "leave 0"}, {do: "wait", wait: grace - time.Second}, {do: "arrive carol"},
				{do: "leave 1"}, {do: "wait", wait: 2 * time.Second}},
			alone: 2, timer: true},
		{name: "leaving twice counts once",
			steps:   []step{{do: "arrive bob"}, {do: "arrive bob"}, {do: "start"}, {do: "leave 0"}, {do: "leave 0"}, {do: "wait", wait: 2 * grace}},
			present: true, moderators: []string{"bob"}},
		{name: "left before the start: the session waits again",
			steps: []step{{do: "arrive bob"}, {do: "leave 0"}, {do: "wait", wait: grace}}},
		{name: "left as it started: the grace period begins at the start",
			steps: []step{{do: "arrive bob"}, {do: "leave 0"}, {do: "start"}, {do: "wait", wait: grace}}, lost: true},
		{name: "back before the start",
			steps:   []step{{do: "arrive bob"}, {do: "leave 0"}, {do: "arrive carol"}, {do: "start"}, {do: "wait", wait: 2 * grace}},
			present: true, moderators: []string{"carol"}},
		{name: "the last leaves: its timer runs",
			steps: []step{{do: "arrive bob"}, {do: "start"}, {do: "leave 0"}}, alone: 1, timer: true},
		// The session's end ends its watches, and so its moderators leave after Stop: no timer
		// then holds the ended session for the grace period, nor tells its client anything.
		{name: "left after the session ended: no timer",
			steps: []step{{do: "arrive bob"}, {do: "start"}, {do: "stop"}, {do: "leave 0"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := testingclock.NewFakeClock(time.Now())
			var lost bool
			alone := 0
			m := NewModeration(grace, clk, ModerationHooks{Alone: func(time.Duration) { alone++ }, Lost: func() { lost = true }})
			var leaves []func()
			for _, s := range tc.steps {
				switch verb, arg, _ := strings.Cut(s.do, " "); verb {
				case "arrive":
					leaves = append(leaves, m.Arrive(arg))
				case "leave":
					n, _ := strconv.Atoi(arg)
					leaves[n]()
				case "start":
					m.Start()
				case "stop":
					m.Stop()
				case "wait":
					clk.Step(s.wait)
				}
			}
			if got := isClosed(m.Present()); got != tc.present {
				t.Errorf("present %v, want %v", got, tc.present)
			}
			if lost != tc.lost || alone != tc.alone {
				t.Errorf("lost %v, alone %d times; want %v, %d", lost, alone, tc.lost, tc.alone)
			}
			if clk.HasWaiters() != tc.timer {
				t.Errorf("a timer left running: %v, want %v", clk.HasWaiters(), tc.timer)
			}
			if got := m.Moderators(); !slices.Equal(got, tc.moderators) {
				t.Errorf("moderators %q, want %q", got, tc.moderators)
			}
		})
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Await returns once a moderator is present, not for one who came and left; else at the timeout
// or the session's end.
func TestModerationAwait(t *testing.T) {
	cases := []struct {
		name   string
		before bool // a moderator came and left before Await
		do     func(m *Moderation, clk *testingclock.FakeClock, done chan struct{})
		want   error
	}{
		{"a moderator comes", false, func(m *Moderation, _ *testingclock.FakeClock, _ chan struct{}) { m.Arrive("bob") }, nil},
		{"none within the timeout", false, func(_ *Moderation, clk *testingclock.FakeClock, _ chan struct{}) { clk.Step(time.Minute) }, ErrNoModerator},
		{"one came and left before", true, func(_ *Moderation, clk *testingclock.FakeClock, _ chan struct{}) { clk.Step(time.Minute) }, ErrNoModerator},
		{"the session ends", false, func(_ *Moderation, _ *testingclock.FakeClock, done chan struct{}) { close(done) }, ErrEnded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := testingclock.NewFakeClock(time.Now())
			m := NewModeration(time.Minute, clk, ModerationHooks{})
			if tc.before {
				m.Arrive("bob")()
			}
			done := make(chan struct{})
			got := make(chan error, 1)
			go func() { got <- m.Await(done, time.Minute) }()
			for !clk.HasWaiters() {
				time.Sleep(time.Millisecond)
			}
			tc.do(m, clk, done)
			if err := <-got; err != tc.want {
				t.Errorf("Await = %v, want %v", err, tc.want)
			}
		})
	}
}
