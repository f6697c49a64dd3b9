package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

const header = "apiVersion: execproxy.dev/v1alpha1\nkind: SessionPolicy\n"

func TestParse(t *testing.T) {
	cases := []struct {
		name, yaml string
		err        string // empty: valid
	}{
		{"empty", header + "rules: []\n", ""},
		{"every field", header + `rules:
- name: auditors
  match: {namespaces: [prod], podSelector: {matchLabels: {pci: "true"}}, users: [amy], groups: [auditors], kinds: [exec, attach]}
  stdin: deny
  commands: {tty: deny, shellScripts: match, allow: [{command: ls}, {command: cat, args: ["/var/log/.*"]}], deny: [{command: rm}]}
  requireReason: {pattern: "[A-Z]+-[0-9]+"}
  recording: {record: all, stdin: true}
  limits: {maxDuration: 1h, idleTimeout: 5m, maxBytesPerSec: 1000, maxSessions: 3, maxSessionsPerUser: 1}
  requireModerator: {timeout: 10m, gracePeriod: 1m}
`, ""},
		{"no header", "rules: []\n", "apiVersion and kind must be execproxy.dev/v1alpha1 and SessionPolicy"},
		{"typo in a field", header + "rules:\n- name: a\n  match: {namespace: [prod]}\n", `unknown field "namespace"`},
		{"no name", header + "rules:\n- stdin: deny\n", "rule 1: a name is required"},
		{"name twice", header + "rules:\n- name: a\n- name: a\n", `rule 2: the name "a" is used by an earlier rule`},
		{"bad stdin", header + "rules:\n- name: a\n  stdin: never\n", `stdin must be one of ["allow" "deny"], not "never"`},
		{"bad kind", header + "rules:\n- name: a\n  match: {kinds: [logs]}\n", `match.kinds: "logs" is none of`},
		{"bad selector", header + "rules:\n- name: a\n  match: {podSelector: {matchLabels: {'a b': c}}}\n", "match.podSelector"},
		{"bad tty", header + "rules:\n- name: a\n  commands: {tty: maybe}\n", "commands.tty must be one of"},
		{"bad shellScripts", header + "rules:\n- name: a\n  commands: {shellScripts: parse}\n", "commands.shellScripts must be one of"},
		{"a pattern that closes the anchoring group", header + "rules:\n- name: a\n  commands: {allow: [{command: cat, args: ['x)|(.*']}]}\n", "commands.allow[0].args[0]"},
		{"no argv0", header + "rules:\n- name: a\n  commands: {allow: [{args: [x]}]}\n", "commands.allow[0].command is required"},
		{"bad args pattern", header + "rules:\n- name: a\n  commands: {deny: [{command: rm, args: ['(']}]}\n", "commands.deny[0].args[0]"},
		{"bad reason pattern", header + "rules:\n- name: a\n  requireReason: {pattern: '['}\n", "requireReason.pattern"},
		{"recording without record", header + "rules:\n- name: a\n  recording: {stdin: true}\n", "recording.record is required"},
		{"negative limit", header + "rules:\n- name: a\n  limits: {maxSessions: -1}\n", "limits must not be negative"},
		{"negative moderator timeout", header + "rules:\n- name: a\n  requireModerator: {timeout: -1s}\n", "requireModerator: timeout and gracePeriod must be between 0"},
		{"moderator grace over an hour", header + "rules:\n- name: a\n  requireModerator: {gracePeriod: 2h}\n", "requireModerator: timeout and gracePeriod must be between 0"},
		{"bad duration", header + "rules:\n- name: a\n  limits: {idleTimeout: soon}\n", `invalid duration "soon"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("got %v, want %q", err, tc.err)
			}
		})
	}
}

func mustParse(t *testing.T, yaml string) *Policy {
	t.Helper()
	p, err := Parse([]byte(header + yaml))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDecide(t *testing.T) {
	p := mustParse(t, `rules:
- name: break-glass
  match: {groups: [sre-oncall]}
- name: pci-read-only
  match: {podSelector: {matchLabels: {pci: "true"}}, kinds: [exec, attach]}
  stdin: deny
  commands: {tty: deny, allow: [{command: ls}, {command: cat, args: ["/var/log/[a-z]+\\.log", "-n"]}], deny: [{command: ls, args: ["-R"]}]}
- name: prod-ticket
  match: {namespaces: [prod]}
  requireReason: {pattern: "INC-[0-9]+"}
  limits: {maxDuration: 1h}
- name: scripts
  match: {namespaces: [scripts]}
  commands: {shellScripts: match, allow: [{command: ls}, {command: date}]}
- name: any-reason
  match: {namespaces: [staging], users: [bob]}
  requireReason: {}
- name: deny-only-scripts
  match: {namespaces: [deny-scripts]}
  commands: {shellScripts: match, deny: [{command: rm}]}
- name: builtin-allowed
  match: {namespaces: [builtins]}
  commands: {shellScripts: match, allow: [{command: echo}, {command: ls}]}
- name: allow-list
  match: {namespaces: [listed]}
  commands: {allow: [{command: ls}]}
- name: moderated
  match: {namespaces: [moderated]}
  requireModerator: {gracePeriod: 1m}
`)
	pci := map[string]string{"pci": "true"}
	exec := func(ns string, labels map[string]string, argv ...string) Session {
		return Session{Kind: session.KindExec, Namespace: ns, Pod: "p", PodLabels: labels, User: "amy", Command: argv}
	}
	with := func(s Session, f func(*Session)) Session { f(&s); return s }
	cases := []struct {
		name string
		s    Session
		rule string
		err  string // empty: allowed
	}{
		{"no rule matches", exec("dev", nil, "rm", "-rf", "/"), "", ""},
		{"first match wins", with(exec("prod", pci, "rm"), func(s *Session) { s.Groups = []string{"sre-oncall"} }), "break-glass", ""},
		{"allowed command", exec("dev", pci, "ls", "-l", "/"), "pci-read-only", ""},
		{"allowed arguments", exec("dev", pci, "cat", "-n", "/var/log/app.log"), "pci-read-only", ""},
		{"argument outside the patterns", exec("dev", pci, "cat", "/etc/shadow"), "pci-read-only",
			`session policy rule "pci-read-only" does not allow the command ["cat" "/etc/shadow"]; it allows ls, cat`},
		{"patterns are anchored", exec("dev", pci, "cat", "/var/log/a.log/../../etc/shadow"), "pci-read-only", "does not allow the command"},
		{"argv0 is exact", exec("dev", pci, "/bin/ls"), "pci-read-only", "does not allow the command"},
		{"denied beats allowed", exec("dev", pci, "ls", "-R"), "pci-read-only", `denies the command ["ls" "-R"]`},
		{"a shell is a command like any other", exec("dev", pci, "sh", "-c", "ls"), "pci-read-only", `does not allow the command ["sh" "-c" "ls"]`},
		{"stdin refused", with(exec("dev", pci, "ls"), func(s *Session) { s.Stdin = true }), "pci-read-only",
			"makes exec sessions read-only: run it without stdin (no -i/--stdin)"},
		{"attach with stdin refused", Session{Kind: session.KindAttach, Namespace: "dev", PodLabels: pci, Stdin: true}, "pci-read-only", "makes attach sessions read-only"},
		{"attach without stdin", Session{Kind: session.KindAttach, Namespace: "dev", PodLabels: pci}, "pci-read-only", ""},
		{"terminal refused", with(exec("dev", pci, "ls"), func(s *Session) { s.TTY = true }), "pci-read-only", "allows no terminal"},
		{"kind not matched", Session{Kind: session.KindPortForward, Namespace: "dev", PodLabels: pci}, "", ""},
		{"reason missing", exec("prod", nil, "ls"), "prod-ticket",
			"requires a reason matching INC-[0-9]+: give one with `kubectl execproxy exec --reason ...`"},
		{"reason given", with(exec("prod", nil, "ls"), func(s *Session) { s.Justification = "INC-42" }), "prod-ticket", ""},
		{"reason not matching", with(exec("prod", nil, "ls"), func(s *Session) { s.Justification = "INC-42 or so" }), "prod-ticket",
			`requires a reason matching INC-[0-9]+, and "INC-42 or so" does not match`},
		{"port-forward needs a reason too", Session{Kind: session.KindPortForward, Namespace: "prod"}, "prod-ticket", "kubectl execproxy port-forward --reason"},
		{"any reason", Session{Kind: session.KindAttach, Namespace: "staging", User: "bob", Justification: "x"}, "any-reason", ""},
		{"any reason, none given", Session{Kind: session.KindAttach, Namespace: "staging", User: "bob"}, "any-reason", "requires a reason: give one with `kubectl execproxy attach --reason ...`"},
		{"other user", Session{Kind: session.KindAttach, Namespace: "staging", User: "amy"}, "", ""},
		{"script words matched", exec("scripts", nil, "sh", "-c", "ls  -l\t/tmp"), "scripts", ""},
		{"script words refused", exec("scripts", nil, "/bin/bash", "-c", "rm -rf /"), "scripts", `does not allow the command ["rm" "-rf" "/"]`},
		{"script syntax", exec("scripts", nil, "sh", "-c", "ls; rm -rf /"), "scripts", "cannot tell what \"ls; rm -rf /\" runs"},
		{"script substitution", exec("scripts", nil, "sh", "-c", "ls $(rm -rf /)"), "scripts", "cannot tell"},
		{"script assignment", exec("scripts", nil, "sh", "-c", "PATH=/tmp ls"), "scripts", "cannot tell"},
		{"script newline", exec("scripts", nil, "sh", "-c", "ls\nrm x"), "scripts", "cannot tell"},
		{"not a shell", exec("scripts", nil, "python3", "-c", "ls"), "scripts", `does not allow the command ["python3" "-c" "ls"]`},
		{"empty script", exec("scripts", nil, "sh", "-c", " "), "scripts", "the session names none"},
		{"deny list: a plain script", exec("deny-scripts", nil, "sh", "-c", "ls -l"), "deny-only-scripts", ""},
		{"deny list: a denied script", exec("deny-scripts", nil, "sh", "-c", "rm -rf /"), "deny-only-scripts", `denies the command ["rm" "-rf" "/"]`},
		{"deny list: eval", exec("deny-scripts", nil, "sh", "-c", "eval rm -rf /"), "deny-only-scripts",
			`the shell runs "eval" itself (a reserved word or builtin), not as the program the lists match: only an allow entry naming "eval" lets it run`},
		{"deny list: command", exec("deny-scripts", nil, "bash", "-c", "command rm -rf /"), "deny-only-scripts", `the shell runs "command" itself`},
		{"deny list: exec", exec("deny-scripts", nil, "dash", "-c", "exec rm -rf /"), "deny-only-scripts", `the shell runs "exec" itself`},
		{"deny list: trap", exec("deny-scripts", nil, "sh", "-c", "trap rm EXIT"), "deny-only-scripts", `the shell runs "trap" itself`},
		{"deny list: source", exec("deny-scripts", nil, "sh", "-c", ". /tmp/x"), "deny-only-scripts", `the shell runs "." itself`},
		{"deny list: a keyword", exec("deny-scripts", nil, "bash", "-c", "time rm -rf /"), "deny-only-scripts", `the shell runs "time" itself`},
		{"deny list: a job", exec("deny-scripts", nil, "bash", "-c", "%1"), "deny-only-scripts", `the shell runs "%1" itself`},
		{"deny list: the script an option", exec("deny-scripts", nil, "sh", "-c", "-x", "rm -rf /"), "deny-only-scripts", `cannot tell what "-x" runs`},
		{"deny list: a blank before the option", exec("deny-scripts", nil, "sh", "-c", " -x"), "deny-only-scripts", ""},
		{"deny list: zsh's =NAME", exec("deny-scripts", nil, "zsh", "-c", "ls =rm"), "deny-only-scripts", "cannot tell"},
		{"a builtin the allow list names", exec("builtins", nil, "sh", "-c", "echo hi"), "builtin-allowed", ""},
		{"a builtin it does not name", exec("builtins", nil, "sh", "-c", "command ls"), "builtin-allowed", `the shell runs "command" itself`},
		{"allow list: attach with stdin", Session{Kind: session.KindAttach, Namespace: "listed", Stdin: true}, "allow-list",
			"allows listed commands only, and attach's input goes to the container's own command"},
		{"allow list: attach without stdin", Session{Kind: session.KindAttach, Namespace: "listed", TTY: true}, "allow-list", ""},
		{"moderated: a terminal", with(exec("moderated", nil, "sh"), func(s *Session) { s.TTY, s.Stdin = true, true }), "moderated", ""},
		{"moderated: no terminal to watch", exec("moderated", nil, "rm", "-rf", "/"), "moderated",
			"requires a moderator, who watches the session's terminal: only exec and attach with a TTY (-it) can be moderated"},
		{"moderated: port-forward", Session{Kind: session.KindPortForward, Namespace: "moderated"}, "moderated", "requires a moderator"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := p.Decide(tc.s)
			if d.Rule != tc.rule {
				t.Errorf("rule %q, want %q", d.Rule, tc.rule)
			}
			if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("got %v, want %q", err, tc.err)
			}
			if err == nil {
				return
			}
			if !apierrors.IsForbidden(err) || !strings.HasPrefix(err.Error(), `pods/`+string(tc.s.Kind)+` `) {
				t.Errorf("%v: want a 403 on pods/%s", err, tc.s.Kind)
			}
		})
	}
	if d, _ := p.Decide(with(exec("prod", nil, "ls"), func(s *Session) { s.Justification = "INC-1" })); d.Limits.MaxDuration.Duration.Hours() != 1 {
		t.Errorf("limits %+v, want the rule's maxDuration", d.Limits)
	}
	d, _ := p.Decide(with(exec("moderated", nil, "sh"), func(s *Session) { s.TTY = true }))
	if m := d.Moderation; m == nil || m.Timeout.Duration != DefaultModeratorTimeout || m.GracePeriod.Duration != time.Minute {
		t.Errorf("moderation %+v, want the default timeout and the rule's grace period", m)
	}
	var none *Policy
	if d, err := none.Decide(exec("dev", nil, "ls")); err != nil || d.Rule != "" {
		t.Errorf("a nil policy decided %+v, %v", d, err)
	}
}

func TestSourceReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(header + "rules:\n- name: first\n")
	if _, err := NewSource(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Error("a missing file made a source")
	}
	src, err := NewSource(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	rule := func() string {
		d, _ := src.Current().Decide(Session{Kind: session.KindExec})
		return d.Rule
	}
	if rule() != "first" {
		t.Fatalf("rule %q, want first", rule())
	}
	if changed, err := src.reload(); changed || err != nil {
		t.Errorf("an unchanged file: changed %v, %v", changed, err)
	}
	write(header + "rules:\n- name: second\n")
	if changed, err := src.reload(); !changed || err != nil || rule() != "second" {
		t.Errorf("a changed file: changed %v, %v, rule %q", changed, err, rule())
	}
	write(header + "rules:\n- name: third\n  stdin: sometimes\n")
	if _, err := src.reload(); err == nil || !strings.Contains(err.Error(), path) || rule() != "second" {
		t.Errorf("a broken file: %v, rule %q; want an error naming the file and the last good rule", err, rule())
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := src.reload(); err == nil || rule() != "second" {
		t.Errorf("a removed file: %v, rule %q", err, rule())
	}
	var nilSource *Source
	if nilSource.Current() != nil {
		t.Error("a nil source has a policy")
	}
}
