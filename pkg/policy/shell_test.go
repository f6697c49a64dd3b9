package policy

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// recordEnv, when set, makes the test binary the recorder: a shell under test runs it as the
// program a script names, and it writes its argv, each element ended by a NUL, to that file.
const recordEnv = "EXECPROXY_TEST_RECORD_ARGV"

func TestMain(m *testing.M) {
	if out := os.Getenv(recordEnv); out != "" {
		var b strings.Builder
		for _, a := range os.Args {
			b.WriteString(a + "\x00")
		}
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			os.Exit(3)
		}
		os.Exit(0)
	}
	code := m.Run()
	if sandbox.base != "" {
		_ = os.RemoveAll(sandbox.base)
	}
	os.Exit(code)
}

// testShells are the real shells whose reading of a script the policy must agree with.
var testShells = [][]string{{"/usr/bin/dash"}, {"/usr/bin/bash"}, {"/usr/bin/busybox", "sh"}}

// trickyScripts seed FuzzShellScriptWords: splitting, options in the script's place, reserved
// words, builtins of each shell, assignments, expansions, control and non-ASCII characters.
var trickyScripts = []string{
	"ls", "ls -l /tmp", "  ls\t-l  ", "\tls\t", "ls  -l\t\t/tmp  ", "", " ", "\t",
	"-x ls", "-x", "+x", "- ls", "--", "-", " -x",
	"eval ls", "exec ls", "command ls", "builtin echo", "time ls", "time", ". ./x", "source x", "trap ls EXIT",
	"alias ls=x", "unalias ls", "function f", "coproc ls", "if ls", "while ls", "until ls", "for x in a",
	"case x in", "select x in a", "do", "done", "then", "else", "elif", "fi", "esac", "in", "{ ls", "} ls", "! ls",
	"[[ -n x ]]", "[ -n x ]", "test x", "echo x", "printf x", ": x", "true", "false", "cd /", "pwd",
	"mapfile -C x", "readarray x", "compgen -C x x", "complete -C x x", "enable -f x y", "fc -s", "let x",
	"hash -p x y", "history -w x", "declare x", "typeset x", "local x", "export x", "readonly x", "set -x",
	"shopt -s x", "read x", "getopts x y", "shift", "return", "exit", "break", "continue", "wait", "jobs",
	"type ls", "umask", "ulimit", "times", "caller", "dirs", "help", "logout", "suspend", "chdir /",
	"noglob ls", "nocorrect ls", "repeat 2 ls", "print x", "whence ls", "foreach x", "nohup ls", "env ls",
	"a=b ls", "a=b", "ls a=b", "=ls", "ls =x", "ls ^x", "ls %1", "ls a,b", "ls @x", "ls :x", "ls -- -",
	"x/y z", "./x y", "a/../b", "..", ".", "...", "LS", "lS -L",
	"ls\x00x", "ls \x00", "ls\x0bx", "ls\x0cx", "ls\rx", "ls\nx", "ls é", "ls \xff", "ls\u00a0x", "ls\u2003x",
	"ls #x", "ls x#", "ls;", "ls&", "ls|x", "ls >x", "ls $x", "ls `x`", "ls 'x'", "ls \"x\"", "ls \\x",
	"ls *", "ls ?", "ls [a]", "ls ~", "ls {a,b}", "ls (x)",
}

// FuzzShellScriptWords: whatever script `sh -c SCRIPT` a deny-only rule with shellScripts: match
// lets through, each real shell runs as exactly one program named by the script's first word with
// argv equal to the words the policy matched. The seeds run in the unit tests; fuzz with
// go test -run='^$' -fuzz=FuzzShellScriptWords -fuzztime=30s ./pkg/policy
func FuzzShellScriptWords(f *testing.F) {
	for _, s := range trickyScripts {
		f.Add(s)
	}
	p := mustNew(f, Rule{Name: "scripts", Commands: &Commands{ShellScripts: ShellScriptsMatch, Deny: []Command{{Command: "no-such-command"}}}})
	f.Fuzz(func(t *testing.T, script string) {
		_, err := p.Decide(Session{Kind: session.KindExec, Command: []string{"sh", "-c", script}})
		if err != nil {
			return // refused: nothing to agree on
		}
		words, ok := plainWords(script)
		if !ok {
			t.Fatalf("%q: allowed, but not plain words", script)
		}
		if strings.ContainsRune(script, 0) {
			t.Fatalf("%q: allowed with a NUL, which no argv can carry", script)
		}
		var missing []string
		for _, sh := range testShells {
			if _, err := os.Stat(sh[0]); err != nil {
				missing = append(missing, sh[0])
				continue
			}
			got, ran := runShell(t, sh, script, words[0])
			if ran && !slices.Equal(got, words) {
				t.Errorf("%s -c %q ran argv %q; the policy matched %q", strings.Join(sh, " "), script, got, words)
			}
		}
		if len(missing) > 0 {
			t.Skipf("shells not installed: %s", strings.Join(missing, ", "))
		}
	})
}

func mustNew(tb testing.TB, rules ...Rule) *Policy {
	tb.Helper()
	p, err := New(rules)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// sandbox holds the recorder: a copy of the test binary that an unprivileged user can run.
var sandbox struct {
	once     sync.Once
	base     string
	recorder string
	applets  []string // busybox's applets: its sh runs them ahead of PATH
	err      error
}

// runAs is the user the shells run as when the tests run as root, so that a builtin the policy
// does not know of cannot do much; the recorder is all PATH holds.
const runAs = 61234

func setUpSandbox() {
	s := &sandbox
	if s.base, s.err = os.MkdirTemp("", "policy-shells-"); s.err != nil {
		return
	}
	if s.err = os.Chmod(s.base, 0o755); s.err != nil {
		return
	}
	self, err := os.Executable()
	if err != nil {
		s.err = err
		return
	}
	s.recorder = filepath.Join(s.base, "recorder")
	if s.err = copyFile(self, s.recorder); s.err != nil {
		return
	}
	if out, err := exec.Command("/usr/bin/busybox", "--list").Output(); err == nil {
		s.applets = strings.Fields(string(out))
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// runShell runs `sh -c script` with the recorder installed as name (on PATH, or at the relative
// path name gives) and returns the argv it recorded; ran is false when no program can be named
// so, or busybox would run its own applet of that name instead.
func runShell(t *testing.T, sh []string, script, name string) (argv []string, ran bool) {
	sandbox.once.Do(setUpSandbox)
	if sandbox.err != nil {
		t.Fatalf("setting up the recorder: %v", sandbox.err)
	}
	if strings.HasSuffix(sh[0], "busybox") && slices.Contains(sandbox.applets, name) {
		return nil, false
	}
	dir, err := os.MkdirTemp(sandbox.base, "run-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if !install(dir, name) {
		return nil, false
	}
	out := filepath.Join(dir, "argv.out")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a guard against a hang, not a check
	defer cancel()
	cmd := exec.CommandContext(ctx, sh[0], append(sh[1:], "-c", script)...)
	cmd.Dir, cmd.Env = dir, []string{"PATH=" + dir, recordEnv + "=" + out}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: runAs, Gid: runAs, NoSetGroups: true}}
	}
	_ = cmd.Run() // the exit status says nothing: the record does
	data, err := os.ReadFile(out)
	if err != nil {
		t.Logf("%s -c %q: the recorder did not run (%s)", strings.Join(sh, " "), script, firstLine(stderr.String()))
		return nil, true
	}
	return strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00"), true
}

// install puts the recorder where a shell looks for the program name: in dir, which is PATH and
// the working directory. It is false for a name no file in dir can have.
func install(dir, name string) bool {
	if name == "" || filepath.IsAbs(name) || strings.HasSuffix(name, "/") {
		return false
	}
	parts := strings.Split(name, "/")
	at := dir
	for _, p := range parts[:len(parts)-1] {
		switch p {
		case "", ".":
			continue
		case "..":
			return false
		}
		at = filepath.Join(at, p)
		if err := os.MkdirAll(at, 0o777); err != nil {
			return false
		}
	}
	last := parts[len(parts)-1]
	if last == "." || last == ".." {
		return false
	}
	return os.Symlink(sandbox.recorder, filepath.Join(at, last)) == nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// TestShellOwnWords: every word the real shells run themselves (a reserved word, builtin, alias
// or function, as their `type` says) is one shellOwn knows. The candidates are what bash and
// busybox list of their own, and shellWords itself (dash lists nothing, and is a subset).
func TestShellOwnWords(t *testing.T) {
	candidates := map[string]bool{}
	for w := range shellWords {
		candidates[w] = true
	}
	for _, list := range [][]string{{"/usr/bin/bash", "-c", "compgen -b -k -a"}, {"/usr/bin/busybox", "sh", "-c", "help"}} {
		out, err := exec.Command(list[0], list[1:]...).Output()
		if err != nil {
			t.Logf("%s: %v", list[0], err)
		}
		for _, w := range strings.Fields(string(out)) {
			if !strings.HasSuffix(w, ":") && w != "Built-in" && w != "commands" && !strings.HasPrefix(w, "-") {
				candidates[w] = true
			}
		}
	}
	if len(candidates) <= len(shellWords) {
		t.Errorf("bash and busybox listed no word of their own")
	}
	var missing []string
	for _, sh := range testShells {
		if _, err := os.Stat(sh[0]); err != nil {
			missing = append(missing, sh[0])
			continue
		}
		for w := range candidates {
			if strings.HasPrefix(w, "-") {
				continue // type would take it for an option
			}
			out, _ := exec.Command(sh[0], append(sh[1:], "-c", `type "$1" 2>&1`, "sh", w)...).Output()
			own := strings.Contains(string(out), "builtin") || strings.Contains(string(out), "keyword") ||
				strings.Contains(string(out), "alias") || strings.Contains(string(out), "function")
			if own && !shellOwn(w) {
				t.Errorf("%s runs %q itself (%s); shellOwn does not know it", strings.Join(sh, " "), w, firstLine(string(out)))
			}
		}
	}
	if len(missing) > 0 {
		t.Skipf("shells not installed: %s", strings.Join(missing, ", "))
	}
}
