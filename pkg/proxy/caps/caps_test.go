package caps

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/exec-proxy/exec-proxy/pkg/peers"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

func TestAdmit(t *testing.T) {
	type ask struct{ user, node string }
	cases := []struct {
		name    string
		caps    Caps
		held    []ask // sessions already running
		ask     ask
		reason  string // "" when admitted
		message string
	}{
		{"unlimited", Caps{}, []ask{{"a", "n"}, {"a", "n"}}, ask{"a", "n"}, "", ""},
		{"global cap", Caps{MaxSessions: 2}, []ask{{"a", "n1"}, {"b", "n2"}}, ask{"c", "n3"},
			"max-sessions", "exec-proxy is at its limit of 2 concurrent sessions (--max-sessions)"},
		{"per user cap", Caps{MaxSessionsPerUser: 1}, []ask{{"a", "n1"}}, ask{"a", "n2"},
			"max-sessions-per-user", `user "a" has 1 concurrent sessions, the limit is 1 (--max-sessions-per-user)`},
		{"per user cap leaves others", Caps{MaxSessionsPerUser: 1}, []ask{{"a", "n1"}}, ask{"b", "n1"}, "", ""},
		{"per node cap", Caps{MaxSessionsPerNode: 2}, []ask{{"a", "n1"}, {"b", "n1"}}, ask{"c", "n1"},
			"max-sessions-per-node", `node "n1" has 2 concurrent sessions, the limit is 2 (--max-sessions-per-node)`},
		{"start burst", Caps{SessionStartQPS: 1, SessionStartBurst: 2}, []ask{{"a", "n"}, {"a", "n"}}, ask{"a", "n"},
			"session-start-rate", `user "a" started sessions faster than 1 per second (burst 2`},
		{"start burst is per user", Caps{SessionStartQPS: 1, SessionStartBurst: 2}, []ask{{"a", "n"}, {"a", "n"}}, ask{"b", "n"}, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := New(tc.caps)
			now := time.Unix(1000, 0)
			a.now = func() time.Time { return now }
			for _, h := range tc.held {
				if _, err := a.Admit(h.user, h.node, Rule{}); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			release, err := a.Admit(tc.ask.user, tc.ask.node, Rule{})
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				release()
				return
			}
			te, ok := err.(*ThrottleError)
			if !ok {
				t.Fatalf("got %v, want a throttle error", err)
			}
			if te.Reason() != tc.reason || !strings.Contains(err.Error(), tc.message) {
				t.Errorf("got %s: %v, want %s: %q", te.Reason(), err, tc.reason, tc.message)
			}
			if !apierrors.IsTooManyRequests(err) {
				t.Errorf("not a 429: %v", err)
			}
		})
	}
}

// A session policy rule's caps count its own sessions, and its users' under it: not another
// rule's, nor those no rule capped (rule "": a session no rule matched).
func TestAdmitPerRule(t *testing.T) {
	prod := Rule{Name: "prod", MaxSessions: 2}
	pci := Rule{Name: "pci", MaxPerUser: 1}
	type ask struct {
		user string
		rule Rule
	}
	cases := []struct {
		name    string
		held    []ask // sessions already running
		ask     ask
		reason  string // "" when admitted
		message string
	}{
		{"rule cap", []ask{{"a", prod}, {"b", prod}}, ask{"c", prod},
			"policy-rule", `session policy rule "prod" allows 2 concurrent sessions, and all are in use; retry later`},
		{"rule cap leaves other rules", []ask{{"a", prod}, {"b", prod}}, ask{"c", Rule{Name: "dev", MaxSessions: 2}}, "", ""},
		{"rule cap leaves sessions no rule capped", []ask{{"a", prod}, {"b", prod}}, ask{"c", Rule{}}, "", ""},
		{"other rules' sessions do not count", []ask{{"a", Rule{Name: "dev", MaxSessions: 2}}, {"b", Rule{Name: "dev", MaxSessions: 2}}}, ask{"c", prod}, "", ""},
		{"uncapped sessions do not count", []ask{{"a", Rule{}}, {"b", Rule{}}}, ask{"c", prod}, "", ""},
		{"per user cap", []ask{{"a", pci}}, ask{"a", pci},
			"policy-rule-per-user", `user "a" has 1 concurrent sessions under session policy rule "pci", which allows 1`},
		{"per user cap leaves other users", []ask{{"a", pci}}, ask{"b", pci}, "", ""},
		{"per user cap is per rule", []ask{{"a", pci}}, ask{"a", Rule{Name: "dev", MaxPerUser: 1}}, "", ""},
		{"per user cap leaves sessions no rule capped", []ask{{"a", pci}}, ask{"a", Rule{}}, "", ""},
		// A reload that gives a rule caps counts the sessions it already had.
		{"cap added by a reload", []ask{{"a", Rule{Name: "prod"}}, {"b", Rule{Name: "prod"}}}, ask{"c", prod},
			"policy-rule", `session policy rule "prod" allows 2 concurrent sessions`},
		{"per user cap added by a reload", []ask{{"a", Rule{Name: "pci"}}}, ask{"a", pci}, "policy-rule-per-user", `which allows 1`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := New(Caps{})
			for _, h := range tc.held {
				if _, err := a.Admit(h.user, "n", h.rule); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			_, err := a.Admit(tc.ask.user, "n", tc.ask.rule)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			te, ok := err.(*ThrottleError)
			if !ok {
				t.Fatalf("got %v, want a throttle error", err)
			}
			if te.Reason() != tc.reason || !strings.Contains(err.Error(), tc.message) || !apierrors.IsTooManyRequests(err) {
				t.Errorf("got %s: %v, want a 429 %s: %q", te.Reason(), err, tc.reason, tc.message)
			}
		})
	}
}

// elsewhere is what other replicas hold, whoever asks.
type elsewhere peers.Held

func (e elsewhere) Of(string, string) peers.Held { return peers.Held(e) }

// The caps count the other replicas' sessions with this one's, and say so; the per-node cap does
// not (each replica dials its own kubelet connections).
func TestAdmitCountsElsewhere(t *testing.T) {
	prod := Rule{Name: "prod", MaxSessions: 3, MaxPerUser: 2}
	cases := []struct {
		name      string
		caps      Caps
		rule      Rule
		elsewhere elsewhere
		reason    string // "" when admitted
		message   string
	}{
		{"per user cap", Caps{MaxSessionsPerUser: 3}, Rule{}, elsewhere{Replicas: 1, Total: 2, User: 2}, "max-sessions-per-user",
			`user "a" has 3 concurrent sessions across 2 replicas, the limit is 3 (--max-sessions-per-user)`},
		{"per user cap, room left", Caps{MaxSessionsPerUser: 4}, Rule{}, elsewhere{Replicas: 1, Total: 2, User: 2}, "", ""},
		{"global cap", Caps{MaxSessions: 5}, Rule{}, elsewhere{Replicas: 2, Total: 4}, "max-sessions",
			"exec-proxy is at its limit of 5 concurrent sessions across 3 replicas (--max-sessions)"},
		{"global cap, room left", Caps{MaxSessions: 6}, Rule{}, elsewhere{Replicas: 2, Total: 4}, "", ""},
		{"rule cap", Caps{}, prod, elsewhere{Replicas: 1, Total: 9, Rule: 2}, "policy-rule",
			`session policy rule "prod" allows 3 concurrent sessions, and all are in use across 2 replicas`},
		{"rule per user cap", Caps{}, prod, elsewhere{Replicas: 1, Total: 9, Rule: 1, RuleUser: 1}, "policy-rule-per-user",
			`user "a" has 2 concurrent sessions across 2 replicas under session policy rule "prod", which allows 2`},
		{"per node cap is this replica's", Caps{MaxSessionsPerNode: 2}, Rule{}, elsewhere{Replicas: 1, Total: 9, User: 9}, "", ""},
		{"no other replica heard", Caps{MaxSessionsPerUser: 1}, Rule{}, elsewhere{}, "max-sessions-per-user",
			`user "a" has 1 concurrent sessions, the limit is 1 (--max-sessions-per-user)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := New(tc.caps)
			if _, err := a.Admit("a", "n", tc.rule); err != nil { // one session on this replica
				t.Fatalf("setup: %v", err)
			}
			a.CountElsewhere(tc.elsewhere)
			_, err := a.Admit("a", "n", tc.rule)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			te, ok := err.(*ThrottleError)
			if !ok || te.Reason() != tc.reason || !strings.Contains(err.Error(), tc.message) {
				t.Errorf("got %v, want %s: %q", err, tc.reason, tc.message)
			}
		})
	}
}

func TestReleaseGivesTheSlotBackOnce(t *testing.T) {
	cases := []struct {
		name string
		caps Caps
		rule Rule
	}{
		{"the flags' slot", Caps{MaxSessionsPerUser: 1, MaxSessions: 1}, Rule{}},
		{"a rule's slot", Caps{}, Rule{Name: "prod", MaxSessions: 1, MaxPerUser: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := New(tc.caps)
			release, err := a.Admit("a", "n", tc.rule)
			if err != nil {
				t.Fatal(err)
			}
			release()
			release() // a second call must not free a slot held by someone else
			second, err := a.Admit("a", "n", tc.rule)
			if err != nil {
				t.Fatalf("slot not given back: %v", err)
			}
			if _, err := a.Admit("b", "n", tc.rule); err == nil {
				t.Fatal("double release freed a second slot")
			}
			second()
			if a.held.Total != 0 || len(a.held.Users) != 0 || len(a.perNode) != 0 || len(a.held.Rules) != 0 || len(a.held.RuleUsers) != 0 {
				t.Errorf("counters not back to zero: %+v, nodes %v", a.held, a.perNode)
			}
		})
	}
}

func TestStartRateRefills(t *testing.T) {
	a := New(Caps{SessionStartQPS: 2, SessionStartBurst: 1})
	now := time.Unix(1000, 0)
	a.now = func() time.Time { return now }
	if _, err := a.Admit("a", "n", Rule{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Admit("a", "n", Rule{}); err == nil {
		t.Fatal("second start within the same instant admitted")
	}
	now = now.Add(500 * time.Millisecond)
	if _, err := a.Admit("a", "n", Rule{}); err != nil {
		t.Fatalf("token not refilled after 1/qps: %v", err)
	}
}

// The apiserver's writers must see a 429 with Retry-After, not a 500 (they test the type).
func TestThrottleErrorIsWrittenAs429(t *testing.T) {
	err := tooMany("max-sessions", 3, "too many")
	rec := httptest.NewRecorder()
	session.WriteStatus(rec, httptest.NewRequest(http.MethodPost, "/", nil), err)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "3" || !strings.Contains(rec.Body.String(), "too many") {
		t.Errorf("got %d Retry-After %q body %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
}
