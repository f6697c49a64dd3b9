//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// edit replaces old, which must occur exactly once, with new in a file of the repository.
type edit struct{ file, old, new string }

// mutant is a deliberately broken exec-proxy and the check that must catch it.
type mutant struct {
	name  string
	edits []edit
	check func(*probe)
}

var mutants = []mutant{
	{"kubelet TLS verification off", []edit{{"pkg/nodeconn/transport.go",
		"tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}",
		"tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}"}},
		checkRogueKubelet},
	{"get is enough to open a session", []edit{
		{"pkg/kuberoute/requestinfo.go", `		info.Verb = "create"`, `		_ = "create"`},
		{"pkg/authz/authorizer.go", `		rec.Verb = sessionVerb(rec.Verb)`, `		_ = sessionVerb(rec.Verb)`}},
		checkUnauthorized},
	{"no bandwidth limit", []edit{{"pkg/proxy/session.go", "if maxBytesPerSec > 0 {", "if false && maxBytesPerSec > 0 {"}},
		func(p *probe) {
			checkLoad(p, loadSettings{sessions: 20, execs: 4, duration: 5 * time.Second, rate: 16 << 10})
		}},
	{"client protocol errors relayed", []edit{{"pkg/proxy/streamstats/streamstats.go",
		"if s.hooks.ClientProtocolError != nil {", "if false {"}},
		checkGarbageFrames},
}

// TestReliabilityCatchesBrokenBuilds: each check above finds the defect of a build broken on
// purpose, so that a check passing means something. The builds are made with go build -overlay:
// the repository is not touched.
func TestReliabilityCatchesBrokenBuilds(t *testing.T) {
	for _, m := range mutants {
		t.Run(m.name, func(t *testing.T) {
			bin := buildMutant(t, m.edits)
			restartExecProxyEnv(t, []string{"EXEC_PROXY_BIN=" + bin})
			if p := runCheck(t, m.name, true, m.check); len(p.findings) == 0 {
				t.Errorf("the check passed against a build with %s: it cannot tell", m.name)
			}
		})
	}
}

// buildMutant builds exec-proxy with edits applied through an overlay.
func buildMutant(t *testing.T, edits []edit) string {
	t.Helper()
	root, dir := repoRoot(), t.TempDir()
	replace := map[string]string{}
	for i, e := range edits {
		src := filepath.Join(root, e.file)
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(data), e.old); n != 1 {
			t.Fatalf("%s holds %q %d times, want once: update the mutant", e.file, e.old, n)
		}
		mutated := filepath.Join(dir, filepath.Base(e.file)+"."+string(rune('a'+i))+".go")
		if err := os.WriteFile(mutated, []byte(strings.Replace(string(data), e.old, e.new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		replace[src] = mutated
	}
	overlay, _ := json.Marshal(map[string]any{"Replace": replace})
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "exec-proxy")
	cmd := exec.Command("go", "build", "-overlay", overlayFile, "-o", bin, "./cmd/exec-proxy")
	cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the broken exec-proxy: %v\n%s", err, out)
	}
	return bin
}
