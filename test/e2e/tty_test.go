//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// terminal is a detached tmux window running one kubectl: a real terminal, sized and resizable.
type terminal struct {
	t          *testing.T
	socket     string
	statusFile string // kubectl's exit status, written by the wrapping shell
}

func newTerminal(t *testing.T, cols, rows int, env []string, argv ...string) *terminal {
	t.Helper()
	term := &terminal{t: t, socket: "e2e-" + marker(t), statusFile: filepath.Join(t.TempDir(), "status")}
	args := []string{"new-session", "-d", "-s", "e2e", "-x", fmt.Sprint(cols), "-y", fmt.Sprint(rows)}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	// tmux's own pane_dead_status can be missing for a while after the pane dies; a file cannot.
	args = append(args, "sh", "-c", `"$@"; echo $? >`+term.statusFile+`; sleep 600`, "sh")
	args = append(args, argv...)
	term.tmux(args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("screen:\n%s", term.screen())
		}
		_ = exec.Command("tmux", "-L", term.socket, "kill-server").Run()
	})
	return term
}

func (term *terminal) tmux(args ...string) string {
	term.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", term.socket}, args...)...).CombinedOutput()
	if err != nil {
		term.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// typeLine types text and Enter, as a person would.
func (term *terminal) typeLine(text string) {
	term.tmux("send-keys", "-t", "e2e", "-l", text)
	term.tmux("send-keys", "-t", "e2e", "Enter")
}

func (term *terminal) screen() string { return term.tmux("capture-pane", "-p", "-t", "e2e") }

// waitFor polls the screen until it shows want.
func (term *terminal) waitFor(want string) {
	term.t.Helper()
	if !waitUntil(30*time.Second, func() bool { return strings.Contains(term.screen(), want) }) {
		term.t.Fatalf("terminal did not show %q; screen:\n%s", want, term.screen())
	}
}

// exitStatus waits for kubectl to exit and returns its status.
func (term *terminal) exitStatus() string {
	term.t.Helper()
	var status []byte
	eventually(term.t, 30*time.Second, "kubectl to exit", func() bool {
		status, _ = os.ReadFile(term.statusFile)
		return len(status) > 0
	})
	return strings.TrimSpace(string(status))
}

// TestExecTTY drives `kubectl exec -it` from a real terminal: typed input reaches the shell, the
// terminal size reaches the container and follows a resize, and the shell's exit code comes back.
func TestExecTTY(t *testing.T) {
	forEach(t, func(t *testing.T, c client, rt route) {
		term := newTerminal(t, 100, 30, c.env, c.path(), "--kubeconfig", kubeconfig("admin"+rt.suffix),
			"exec", "-it", "demo", "-c", "main", "--", "sh")
		t.Logf("%s (%s %s) via %s: exec -it demo -- sh in tmux", c.path(), c.version, strings.Join(c.env, " "), rt.name)
		term.typeLine("echo typed-$((6*7))")
		term.waitFor("typed-42") // the shell evaluated what was typed; the echoed input reads typed-$((6*7))
		term.typeLine("echo size=$(stty size)")
		term.waitFor("size=30 100")
		term.tmux("resize-window", "-t", "e2e", "-x", "120", "-y", "40")
		// The resize travels as an event: ask until the container's terminal has it.
		eventually(t, 30*time.Second, "the resize to reach the container", func() bool {
			term.typeLine("echo size=$(stty size)")
			time.Sleep(200 * time.Millisecond)
			return strings.Contains(term.screen(), "size=40 120")
		})
		term.typeLine("exit 5")
		if status := term.exitStatus(); status != "5" {
			t.Errorf("kubectl exit status %s, want 5; screen:\n%s", status, term.screen())
		}
	})
}
