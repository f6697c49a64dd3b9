package recording

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

func TestLoadPolicy(t *testing.T) {
	cases := []struct {
		name, yaml string
		err        string // empty: valid
	}{
		{"valid", "rules:\n- namespaces: [prod]\n  groups: [contractors]\n  record: all\n  stdin: true\n- record: none\n", ""},
		{"bad record", "rules:\n- record: sometimes\n", `record must be "all", "tty" or "none", not "sometimes"`},
		{"typo in a field", "rules:\n- namespace: [prod]\n  record: all\n", `unknown field "namespace"`},
		{"not YAML", "rules: [", "recording policy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "policy.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadPolicy(path)
			if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("got %v, want %q", err, tc.err)
			}
		})
	}
}

func TestRecordingDecide(t *testing.T) {
	yes := true
	policy := &Policy{Rules: []Rule{
		{Namespaces: []string{"prod"}, Groups: []string{"contractors"}, Record: RecordAll, Stdin: &yes},
		{Users: []string{"break-glass"}, Record: RecordNone},
		{Namespaces: []string{"prod"}, Record: RecordTTY},
		{Namespaces: []string{"dev"}, Record: RecordNone},
	}}
	sessionOf := func(ns, user string, groups []string, tty bool, kind session.Kind) Session {
		return Session{Namespace: ns, User: user, Groups: groups, TTY: tty, Kind: kind}
	}
	cases := []struct {
		name          string
		cfg           Config
		s             Session
		record, stdin bool
	}{
		{"no dir", Config{NonTTY: true, Policy: policy}, sessionOf("prod", "bob", []string{"contractors"}, true, session.KindExec), false, false},
		{"flags: tty", Config{Dir: "d"}, sessionOf("x", "bob", nil, true, session.KindExec), true, false},
		{"flags: no tty", Config{Dir: "d"}, sessionOf("x", "bob", nil, false, session.KindExec), false, false},
		{"flags: non-tty too, stdin", Config{Dir: "d", NonTTY: true, Stdin: true}, sessionOf("x", "bob", nil, false, session.KindAttach), true, true},
		{"never port-forward", Config{Dir: "d", NonTTY: true}, sessionOf("x", "bob", nil, false, session.KindPortForward), false, false},
		{"group rule, with stdin", Config{Dir: "d", Policy: policy}, sessionOf("prod", "bob", []string{"staff", "contractors"}, false, session.KindExec), true, true},
		{"group rule is per namespace", Config{Dir: "d", Policy: policy}, sessionOf("staging", "bob", []string{"contractors"}, false, session.KindExec), false, false},
		{"user rule", Config{Dir: "d", Policy: policy}, sessionOf("prod", "break-glass", nil, true, session.KindExec), false, false},
		{"namespace rule, tty", Config{Dir: "d", Policy: policy}, sessionOf("prod", "alice", nil, true, session.KindExec), true, false},
		{"namespace rule, no tty", Config{Dir: "d", NonTTY: true, Policy: policy}, sessionOf("prod", "alice", nil, false, session.KindExec), false, false},
		{"namespace off", Config{Dir: "d", Policy: policy}, sessionOf("dev", "alice", nil, true, session.KindExec), false, false},
		{"no rule: flags", Config{Dir: "d", NonTTY: true, Policy: policy}, sessionOf("other", "alice", nil, false, session.KindExec), true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if record, stdin := tc.cfg.Decide(tc.s); record != tc.record || stdin != tc.stdin {
				t.Errorf("record %v stdin %v, want %v %v", record, stdin, tc.record, tc.stdin)
			}
		})
	}
}
