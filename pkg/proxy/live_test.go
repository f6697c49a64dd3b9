package proxy

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/exec-proxy/exec-proxy/pkg/policy"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// A session's policy rule sets its maximum duration and idle timeout in place of the flags',
// longer or shorter; a limit the rule leaves unset is the flag's.
func TestSweep(t *testing.T) {
	minutes := func(n int) metav1.Duration { return metav1.Duration{Duration: time.Duration(n) * time.Minute} }
	cases := []struct {
		name      string
		flags     Limits
		rule      policy.Limits
		age, idle time.Duration // since the session started, and since it was last active
		reason    string        // "" when it goes on
	}{
		{"rule max duration, no flags", Limits{}, policy.Limits{MaxDuration: minutes(60)}, time.Hour, 0, session.ReasonMaxDuration},
		{"rule max duration, not reached", Limits{}, policy.Limits{MaxDuration: minutes(60)}, 59 * time.Minute, 0, ""},
		{"rule idle timeout, no flags", Limits{}, policy.Limits{IdleTimeout: minutes(5)}, 5 * time.Minute, 5 * time.Minute, session.ReasonIdleTimeout},
		{"rule idle timeout, not reached", Limits{}, policy.Limits{IdleTimeout: minutes(5)}, time.Hour, 4 * time.Minute, ""},
		{"rule max duration longer than the flag's", Limits{MaxSessionDuration: time.Minute}, policy.Limits{MaxDuration: minutes(60)}, 30 * time.Minute, 0, ""},
		{"rule max duration shorter than the flag's", Limits{MaxSessionDuration: time.Hour}, policy.Limits{MaxDuration: minutes(1)}, 2 * time.Minute, 0, session.ReasonMaxDuration},
		{"rule idle timeout longer than the flag's", Limits{IdleTimeout: time.Minute}, policy.Limits{IdleTimeout: minutes(10)}, time.Hour, 5 * time.Minute, ""},
		{"rule idle timeout shorter than the flag's", Limits{IdleTimeout: time.Hour}, policy.Limits{IdleTimeout: minutes(1)}, time.Hour, 2 * time.Minute, session.ReasonIdleTimeout},
		{"rule sets one, the flag's other applies", Limits{IdleTimeout: time.Minute}, policy.Limits{MaxDuration: minutes(60)}, 30 * time.Minute, 2 * time.Minute, session.ReasonIdleTimeout},
		{"no rule limits: the flags'", Limits{MaxSessionDuration: time.Minute}, policy.Limits{}, 2 * time.Minute, 0, session.ReasonMaxDuration},
		{"no limits at all", Limits{}, policy.Limits{}, 100 * time.Hour, 100 * time.Hour, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(100000, 0)
			s := testSession(t, Identity{Kind: session.KindExec}, 0)
			s.decision = policy.Decision{Rule: "r", Limits: tc.rule}
			s.Start = now.Add(-tc.age)
			s.traffic.lastActive.Store(now.Add(-tc.idle).UnixNano())
			live := newLiveSessions()
			if err := live.add(s); err != nil {
				t.Fatal(err)
			}
			live.sweep(now, tc.flags)
			if got := s.EndReason(); got != tc.reason {
				t.Errorf("end reason %q, want %q", got, tc.reason)
			}
		})
	}
}
