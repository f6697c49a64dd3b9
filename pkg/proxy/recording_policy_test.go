package proxy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadRecordingPolicy(t *testing.T) {
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
			_, err := LoadRecordingPolicy(path)
			if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("got %v, want %q", err, tc.err)
			}
		})
	}
}

func TestRecordingDecide(t *testing.T) {
	yes := true
	policy := &RecordingPolicy{Rules: []RecordingRule{
		{Namespaces: []string{"prod"}, Groups: []string{"contractors"}, Record: RecordAll, Stdin: &yes},
		{Users: []string{"break-glass"}, Record: RecordNone},
		{Namespaces: []string{"prod"}, Record: RecordTTY},
		{Namespaces: []string{"dev"}, Record: RecordNone},
	}}
	session := func(ns, user string, groups []string, tty bool, kind Kind) *Session {
		return &Session{Namespace: ns, User: user, Groups: groups, TTY: tty, Kind: kind}
	}
	cases := []struct {
		name          string
		cfg           RecordingConfig
		s             *Session
		record, stdin bool
	}{
		{"no dir", RecordingConfig{NonTTY: true, Policy: policy}, session("prod", "bob", []string{"contractors"}, true, KindExec), false, false},
		{"flags: tty", RecordingConfig{Dir: "d"}, session("x", "bob", nil, true, KindExec), true, false},
		{"flags: no tty", RecordingConfig{Dir: "d"}, session("x", "bob", nil, false, KindExec), false, false},
		{"flags: non-tty too, stdin", RecordingConfig{Dir: "d", NonTTY: true, Stdin: true}, session("x", "bob", nil, false, KindAttach), true, true},
		{"never port-forward", RecordingConfig{Dir: "d", NonTTY: true}, session("x", "bob", nil, false, KindPortForward), false, false},
		{"group rule, with stdin", RecordingConfig{Dir: "d", Policy: policy}, session("prod", "bob", []string{"staff", "contractors"}, false, KindExec), true, true},
		{"group rule is per namespace", RecordingConfig{Dir: "d", Policy: policy}, session("staging", "bob", []string{"contractors"}, false, KindExec), false, false},
		{"user rule", RecordingConfig{Dir: "d", Policy: policy}, session("prod", "break-glass", nil, true, KindExec), false, false},
		{"namespace rule, tty", RecordingConfig{Dir: "d", Policy: policy}, session("prod", "alice", nil, true, KindExec), true, false},
		{"namespace rule, no tty", RecordingConfig{Dir: "d", NonTTY: true, Policy: policy}, session("prod", "alice", nil, false, KindExec), false, false},
		{"namespace off", RecordingConfig{Dir: "d", Policy: policy}, session("dev", "alice", nil, true, KindExec), false, false},
		{"no rule: flags", RecordingConfig{Dir: "d", NonTTY: true, Policy: policy}, session("other", "alice", nil, false, KindExec), true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if record, stdin := tc.cfg.decide(tc.s); record != tc.record || stdin != tc.stdin {
				t.Errorf("record %v stdin %v, want %v %v", record, stdin, tc.record, tc.stdin)
			}
		})
	}
}
