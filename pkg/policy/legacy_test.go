package policy

import (
	"strings"
	"testing"

	"github.com/exec-proxy/exec-proxy/pkg/recording"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

func TestParseRecordingPolicy(t *testing.T) {
	cases := []struct {
		name, yaml string
		err        string // empty: valid
	}{
		{"valid", "rules:\n- namespaces: [prod]\n  groups: [contractors]\n  record: all\n  stdin: true\n- record: none\n", ""},
		{"bad record", "rules:\n- record: sometimes\n", `recording.record must be one of ["all" "tty" "none"], not "sometimes"`},
		{"typo in a field", "rules:\n- namespace: [prod]\n  record: all\n", `unknown field "namespace"`},
		{"not YAML", "rules: [", "error converting YAML"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRecordingPolicy([]byte(tc.yaml))
			if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("got %v, want %q", err, tc.err)
			}
		})
	}
}

// TestRecordingPolicyDecides: a --recording-policy-file decides recording as it did before the
// session policy grew out of it.
func TestRecordingPolicyDecides(t *testing.T) {
	policy, err := ParseRecordingPolicy([]byte(`rules:
- {namespaces: [prod], groups: [contractors], record: all, stdin: true}
- {users: [break-glass], record: none}
- {namespaces: [prod], record: tty}
- {namespaces: [dev], record: none}
`))
	if err != nil {
		t.Fatal(err)
	}
	sessionOf := func(ns, user string, groups []string, tty bool, kind session.Kind) recording.Session {
		return recording.Session{Namespace: ns, User: user, Groups: groups, TTY: tty, Kind: kind}
	}
	cases := []struct {
		name          string
		cfg           recording.Config
		policy        *Policy
		s             recording.Session
		record, stdin bool
	}{
		{"no dir", recording.Config{NonTTY: true}, policy, sessionOf("prod", "bob", []string{"contractors"}, true, session.KindExec), false, false},
		{"flags: tty", recording.Config{Dir: "d"}, nil, sessionOf("x", "bob", nil, true, session.KindExec), true, false},
		{"flags: no tty", recording.Config{Dir: "d"}, nil, sessionOf("x", "bob", nil, false, session.KindExec), false, false},
		{"flags: non-tty too, stdin", recording.Config{Dir: "d", NonTTY: true, Stdin: true}, nil, sessionOf("x", "bob", nil, false, session.KindAttach), true, true},
		{"never port-forward", recording.Config{Dir: "d", NonTTY: true}, nil, sessionOf("x", "bob", nil, false, session.KindPortForward), false, false},
		{"group rule, with stdin", recording.Config{Dir: "d"}, policy, sessionOf("prod", "bob", []string{"staff", "contractors"}, false, session.KindExec), true, true},
		{"group rule is per namespace", recording.Config{Dir: "d"}, policy, sessionOf("staging", "bob", []string{"contractors"}, false, session.KindExec), false, false},
		{"user rule", recording.Config{Dir: "d"}, policy, sessionOf("prod", "break-glass", nil, true, session.KindExec), false, false},
		{"namespace rule, tty", recording.Config{Dir: "d"}, policy, sessionOf("prod", "alice", nil, true, session.KindExec), true, false},
		{"namespace rule, no tty", recording.Config{Dir: "d", NonTTY: true}, policy, sessionOf("prod", "alice", nil, false, session.KindExec), false, false},
		{"namespace off", recording.Config{Dir: "d"}, policy, sessionOf("dev", "alice", nil, true, session.KindExec), false, false},
		{"no rule: flags", recording.Config{Dir: "d", NonTTY: true}, policy, sessionOf("other", "alice", nil, false, session.KindExec), true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := tc.policy.Decide(Session{Kind: tc.s.Kind, Namespace: tc.s.Namespace, User: tc.s.User, Groups: tc.s.Groups, TTY: tc.s.TTY})
			if err != nil {
				t.Fatal(err)
			}
			if record, stdin := tc.cfg.Decide(tc.s, d.Recording); record != tc.record || stdin != tc.stdin {
				t.Errorf("record %v stdin %v, want %v %v", record, stdin, tc.record, tc.stdin)
			}
		})
	}
}
