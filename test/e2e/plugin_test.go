//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// plugin runs `kubectl execproxy args...` (bin/kubectl-execproxy found on PATH, as kubectl finds
// plugins) with kubeconfig.
func plugin(t *testing.T, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(clients[1].path(), append([]string{"execproxy"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+filepath.Join(repoRoot(), "bin")+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	t.Logf("kubectl execproxy %v → %v", args, err)
	return string(out), err
}

// TestPlugin: kubectl execproxy setup adds a context through exec-proxy that stock kubectl execs
// with; sessions lists a live session and kill ends it.
func TestPlugin(t *testing.T) {
	data, err := os.ReadFile(kubeconfig("admin-direct"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := plugin(t, cfg, "setup")
	if err != nil || !strings.Contains(out, "-execproxy") {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	current := strings.TrimSpace(mustRun(t, clients[1].path(), "--kubeconfig", cfg, "config", "current-context"))
	t.Run("exec through the new context", func(t *testing.T) {
		m := marker(t)
		out := mustRun(t, clients[1].path(), "--kubeconfig", cfg, "--context", current+"-execproxy", "exec", "-n", "demo", "demo", "-c", "main", "--", "echo", m)
		if out != m+"\n" {
			t.Errorf("output %q", out)
		}
		sessionRecords(t, m, map[string]int{"start": 1, "end": 1}) // it went through exec-proxy
	})
	t.Run("sessions and kill", func(t *testing.T) {
		m := marker(t)
		s := clients[0].start(t, viaExecProxy, "ns-user", "exec", "demo", "-c", "main", "--", "sh", "-c", "echo "+m+"; sleep 60")
		s.waitFor(t, m)
		var id string
		eventually(t, 10*time.Second, "the session in kubectl execproxy sessions -A", func() bool {
			out, _ := plugin(t, cfg, "sessions", "-A")
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, m) && strings.Contains(line, "ns-user") {
					id = strings.Fields(line)[0]
				}
			}
			return id != ""
		})
		if out, err := plugin(t, cfg, "kill", id); err != nil || !strings.Contains(out, "ended") {
			t.Fatalf("kill: %v\n%s", err, out)
		}
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			t.Fatal("the session runs on after kill")
		}
		if end := sessionRecords(t, m, map[string]int{"start": 1, "end": 1})["end"][0]; end.Annotations[annotation+"reason"] != "killed by admin" {
			t.Errorf("end record: %+v", end.Annotations)
		}
		if out, err := plugin(t, cfg, "kill", id); err == nil || !strings.Contains(out, "no live session") {
			t.Errorf("killing it again: %v\n%s", err, out)
		}
	})
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}
