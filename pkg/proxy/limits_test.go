package proxy

import (
	"fmt"
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
		limits  Limits
		held    []ask // sessions already running
		ask     ask
		reason  string // "" when admitted
		message string
	}{
		{"unlimited", Limits{}, []ask{{"a", "n"}, {"a", "n"}}, ask{"a", "n"}, "", ""},
		{"global cap", Limits{MaxSessions: 2}, []ask{{"a", "n1"}, {"b", "n2"}}, ask{"c", "n3"},
			"max-sessions", "exec-proxy is at its limit of 2 concurrent sessions (--max-sessions)"},
		{"per user cap", Limits{MaxSessionsPerUser: 1}, []ask{{"a", "n1"}}, ask{"a", "n2"},
			"max-sessions-per-user", `user "a" has 1 concurrent sessions, the limit is 1 (--max-sessions-per-user)`},
		{"per user cap leaves others", Limits{MaxSessionsPerUser: 1}, []ask{{"a", "n1"}}, ask{"b", "n1"}, "", ""},
		{"per node cap", Limits{MaxSessionsPerNode: 2}, []ask{{"a", "n1"}, {"b", "n1"}}, ask{"c", "n1"},
			"max-sessions-per-node", `node "n1" has 2 concurrent sessions, the limit is 2 (--max-sessions-per-node)`},
		{"start burst", Limits{SessionStartQPS: 1, SessionStartBurst: 2}, []ask{{"a", "n"}, {"a", "n"}}, ask{"a", "n"},
			"session-start-rate", `user "a" started sessions faster than 1 per second (burst 2`},
		{"start burst is per user", Limits{SessionStartQPS: 1, SessionStartBurst: 2}, []ask{{"a", "n"}, {"a", "n"}}, ask{"b", "n"}, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAdmitter(tc.limits)
			now := time.Unix(1000, 0)
			a.now = func() time.Time { return now }
			for _, h := range tc.held {
				if _, err := a.admit(h.user, h.node, ruleCaps{}); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			release, err := a.admit(tc.ask.user, tc.ask.node, ruleCaps{})
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				release()
				return
			}
			te, ok := err.(*throttleError)
			if !ok {
				t.Fatalf("got %v, want a throttle error", err)
			}
			if te.reason != tc.reason || !strings.Contains(err.Error(), tc.message) {
				t.Errorf("got %s: %v, want %s: %q", te.reason, err, tc.reason, tc.message)
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
	prod := ruleCaps{rule: "prod", maxSessions: 2}
	pci := ruleCaps{rule: "pci", maxPerUser: 1}
	type ask struct {
		user string
		rule ruleCaps
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
		{"rule cap leaves other rules", []ask{{"a", prod}, {"b", prod}}, ask{"c", ruleCaps{rule: "dev", maxSessions: 2}}, "", ""},
		{"rule cap leaves sessions no rule capped", []ask{{"a", prod}, {"b", prod}}, ask{"c", ruleCaps{}}, "", ""},
		{"other rules' sessions do not count", []ask{{"a", ruleCaps{rule: "dev", maxSessions: 2}}, {"b", ruleCaps{rule: "dev", maxSessions: 2}}}, ask{"c", prod}, "", ""},
		{"uncapped sessions do not count", []ask{{"a", ruleCaps{}}, {"b", ruleCaps{}}}, ask{"c", prod}, "", ""},
		{"per user cap", []ask{{"a", pci}}, ask{"a", pci},
			"policy-rule-per-user", `user "a" has 1 concurrent sessions under session policy rule "pci", which allows 1`},
		{"per user cap leaves other users", []ask{{"a", pci}}, ask{"b", pci}, "", ""},
		{"per user cap is per rule", []ask{{"a", pci}}, ask{"a", ruleCaps{rule: "dev", maxPerUser: 1}}, "", ""},
		{"per user cap leaves sessions no rule capped", []ask{{"a", pci}}, ask{"a", ruleCaps{}}, "", ""},
		// A reload that gives a rule caps counts the sessions it already had.
		{"cap added by a reload", []ask{{"a", ruleCaps{rule: "prod"}}, {"b", ruleCaps{rule: "prod"}}}, ask{"c", prod},
			"policy-rule", `session policy rule "prod" allows 2 concurrent sessions`},
		{"per user cap added by a reload", []ask{{"a", ruleCaps{rule: "pci"}}}, ask{"a", pci}, "policy-rule-per-user", `which allows 1`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAdmitter(Limits{})
			for _, h := range tc.held {
				if _, err := a.admit(h.user, "n", h.rule); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			_, err := a.admit(tc.ask.user, "n", tc.ask.rule)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			te, ok := err.(*throttleError)
			if !ok {
				t.Fatalf("got %v, want a throttle error", err)
			}
			if te.reason != tc.reason || !strings.Contains(err.Error(), tc.message) || !apierrors.IsTooManyRequests(err) {
				t.Errorf("got %s: %v, want a 429 %s: %q", te.reason, err, tc.reason, tc.message)
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
	prod := ruleCaps{rule: "prod", maxSessions: 3, maxPerUser: 2}
	cases := []struct {
		name      string
		limits    Limits
		rule      ruleCaps
		elsewhere elsewhere
		reason    string // "" when admitted
		message   string
	}{
		{"per user cap", Limits{MaxSessionsPerUser: 3}, ruleCaps{}, elsewhere{Replicas: 1, Total: 2, User: 2}, "max-sessions-per-user",
			`user "a" has 3 concurrent sessions across 2 replicas, the limit is 3 (--max-sessions-per-user)`},
		{"per user cap, room left", Limits{MaxSessionsPerUser: 4}, ruleCaps{}, elsewhere{Replicas: 1, Total: 2, User: 2}, "", ""},
		{"global cap", Limits{MaxSessions: 5}, ruleCaps{}, elsewhere{Replicas: 2, Total: 4}, "max-sessions",
			"exec-proxy is at its limit of 5 concurrent sessions across 3 replicas (--max-sessions)"},
		{"global cap, room left", Limits{MaxSessions: 6}, ruleCaps{}, elsewhere{Replicas: 2, Total: 4}, "", ""},
		{"rule cap", Limits{}, prod, elsewhere{Replicas: 1, Total: 9, Rule: 2}, "policy-rule",
			`session policy rule "prod" allows 3 concurrent sessions, and all are in use across 2 replicas`},
		{"rule per user cap", Limits{}, prod, elsewhere{Replicas: 1, Total: 9, Rule: 1, RuleUser: 1}, "policy-rule-per-user",
			`user "a" has 2 concurrent sessions across 2 replicas under session policy rule "prod", which allows 2`},
		{"per node cap is this replica's", Limits{MaxSessionsPerNode: 2}, ruleCaps{}, elsewhere{Replicas: 1, Total: 9, User: 9}, "", ""},
		{"no other replica heard", Limits{MaxSessionsPerUser: 1}, ruleCaps{}, elsewhere{}, "max-sessions-per-user",
			`user "a" has 1 concurrent sessions, the limit is 1 (--max-sessions-per-user)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAdmitter(tc.limits)
			if _, err := a.admit("a", "n", tc.rule); err != nil { // one session on this replica
				t.Fatalf("setup: %v", err)
			}
			a.elsewhere = tc.elsewhere
			_, err := a.admit("a", "n", tc.rule)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			te, ok := err.(*throttleError)
			if !ok || te.reason != tc.reason || !strings.Contains(err.Error(), tc.message) {
				t.Errorf("got %v, want %s: %q", err, tc.reason, tc.message)
			}
		})
	}
}

func TestReleaseGivesTheSlotBackOnce(t *testing.T) {
	cases := []struct {
		name   string
		limits Limits
		rule   ruleCaps
	}{
		{"the flags' slot", Limits{MaxSessionsPerUser: 1, MaxSessions: 1}, ruleCaps{}},
		{"a rule's slot", Limits{}, ruleCaps{rule: "prod", maxSessions: 1, maxPerUser: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAdmitter(tc.limits)
			release, err := a.admit("a", "n", tc.rule)
			if err != nil {
				t.Fatal(err)
			}
			release()
			release() // a second call must not free a slot held by someone else
			second, err := a.admit("a", "n", tc.rule)
			if err != nil {
				t.Fatalf("slot not given back: %v", err)
			}
			if _, err := a.admit("b", "n", tc.rule); err == nil {
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
	a := newAdmitter(Limits{SessionStartQPS: 2, SessionStartBurst: 1})
	now := time.Unix(1000, 0)
	a.now = func() time.Time { return now }
	if _, err := a.admit("a", "n", ruleCaps{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.admit("a", "n", ruleCaps{}); err == nil {
		t.Fatal("second start within the same instant admitted")
	}
	now = now.Add(500 * time.Millisecond)
	if _, err := a.admit("a", "n", ruleCaps{}); err != nil {
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

// A throttled session still delivers all its output: the kubelet sends it all at once and closes,
// exec-proxy holds it for the client (see outQueue) and closes only once it has passed.
func TestThrottledSessionDeliversEverything(t *testing.T) {
	checkLeaks(t)
	kubelet := newFakeKubelet(t)
	p := newTestProxier(t, kubelet.caFile, Limits{MaxBytesPerSecSession: 256 << 10}, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t)))
	for _, protocol := range []string{"spdy", "websocket"} {
		t.Run(protocol, func(t *testing.T) {
			srv, records := frontWithRecords(t, p)
			const lines = 512 // 512 KiB: about two seconds at the limit
			out, err := execVia(t, srv, protocol, "alice", execCase{command: []string{"stream", fmt.Sprint(lines)}})
			if err != nil || len(out) != lines*1024 {
				t.Errorf("exec: %v; %d bytes of %d arrived", err, len(out), lines*1024)
			}
			if rec := <-records; rec.ExitCode != "0" || rec.Reason != session.ReasonExited || rec.BytesOut < lines*1024 {
				t.Errorf("record: exit %q, reason %q, %d bytes out", rec.ExitCode, rec.Reason, rec.BytesOut)
			}
		})
	}
}
