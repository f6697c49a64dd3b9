//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/exec-proxy/exec-proxy/pkg/commandline/commandlinetest"
)

// sendKey types one key into the terminal, as its bytes.
func (term *terminal) sendKey(k []byte) {
	args := []string{"send-keys", "-t", "e2e", "-H"}
	for _, b := range k {
		args = append(args, hex.EncodeToString([]byte{b}))
	}
	term.tmux(args...)
}

// output is what the terminal's program wrote, as tmux pipes it to a file: read without a process
// per look, so that typing a corpus key by key waits for each echo at a person's pace.
type output struct {
	t    *testing.T
	path string
}

func (term *terminal) pipeOutput() output {
	path := filepath.Join(term.t.TempDir(), "output")
	term.tmux("pipe-pane", "-t", "e2e", "-o", "cat >>"+path)
	return output{term.t, path}
}

func (o output) size() int64 {
	fi, err := os.Stat(o.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// grown waits until the output grew past n, for at most limit (a key with no echo shows nothing).
func (o output) grown(n int64, limit time.Duration) {
	for start := time.Now(); time.Since(start) < limit && o.size() <= n; {
		time.Sleep(2 * time.Millisecond)
	}
}

// settle waits until the output stops growing for quiet (a pace, not a check: a person waits for
// the echo too), for at most limit.
func (o output) settle(quiet, limit time.Duration) {
	last, since := o.size(), time.Now()
	for start := time.Now(); time.Since(start) < limit && time.Since(since) < quiet; {
		time.Sleep(5 * time.Millisecond)
		if n := o.size(); n != last {
			last, since = n, time.Now()
		}
	}
}

// prompted: the output ends with ash's prompt, PS1 or PS2 (and busybox's question of where the
// cursor is, which tmux answers).
func (o output) prompted() bool {
	b, err := os.ReadFile(o.path)
	if err != nil {
		return false
	}
	b = bytes.TrimSuffix(b, []byte("\x1b[6n"))
	return bytes.HasSuffix(b, []byte("$ ")) || bytes.HasSuffix(b, []byte("> "))
}

// TestTypedCommands types the typing corpus of pkg/commandline (busybox ash: mistakes corrected,
// Ctrl-U/Ctrl-W, cursor moves, history recall, Tab completion, multi-line input, long lines, a
// Ctrl-C'd line, a line typed without echo) into stock kubectl exec -it under tmux, through
// exec-proxy: the command records exec-proxy writes must be the lines the shell ran (its own set -v
// trace), line for line: none it did not run, none wrong with high confidence, and at least 95%
// of them; each is marked in the session's recording.
func TestTypedCommands(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot(), "pkg", "commandline", "testdata", "ash.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines, err := commandlinetest.Parse(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []client{clients[0], clients[1]} {
		t.Run(c.name, func(t *testing.T) {
			m := marker(t)
			dir := "/tmp/" + m
			files := "alpha_report.txt beta_notes.md gamma_dir/delta.txt notes_one.txt notes_two.txt history"
			// Through exec-proxy: another test's deny-direct-exec policy may still be in force.
			inPod := func(script string) string {
				t.Helper()
				res := clients[1].kubectl(t, viaExecProxy, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "sh", "-c", script)
				if res.code != 0 {
					t.Fatalf("%s in the pod: exit %d\n%s", script, res.code, res.stderr)
				}
				return res.stdout
			}
			inPod("mkdir -p " + dir + "/gamma_dir && cd " + dir + " && touch " + files + " && printf 'cd " + dir + "\\nexec 2>trace\\nset -v\\n' >rc")
			term := newTerminal(t, 80, 24, c.env, c.path(), "--kubeconfig", kubeconfig("admin"), "-n", "demo",
				"exec", "-it", "demo", "-c", "main", "--", "env", "PS1=$ ", "ENV="+dir+"/rc", "HOME="+dir, "sh", "-i")
			term.waitFor("$")
			out := term.pipeOutput()
			out.settle(300*time.Millisecond, 5*time.Second)
			for _, l := range lines {
				began := time.Now()
				keys, last, ends := l.Ends()
				for len(keys) > 0 {
					k := keys[:commandlinetest.KeyLen(keys)]
					n := out.size()
					term.sendKey(k)
					keys = keys[len(k):]
					if !l.NoEcho { // a person sees the echo of one key before the next
						out.grown(n, 500*time.Millisecond)
					}
				}
				out.settle(100*time.Millisecond, time.Second)
				if ends {
					term.sendKey([]byte{last})
					for start := time.Now(); time.Since(start) < 5*time.Second; {
						out.settle(100*time.Millisecond, time.Second)
						if out.prompted() {
							break
						}
					}
				}
				if d := time.Since(began); d > 3*time.Second {
					t.Logf("line %d %q took %v", l.N, l.Source, d.Round(time.Millisecond))
				}
			}
			term.typeLine("exit")
			if status := term.exitStatus(); status != "0" {
				t.Errorf("kubectl exit status %s, want 0", status)
			}
			ran := commandlinetest.AshTrace([]byte(inPod("cat " + dir + "/trace")))
			records := commandRecords(t, m, len(ran))
			compareCommands(t, ran, records)
			checkMarkers(t, records)
		})
	}
}

// commandRecords waits for the command records of the session whose argv has m, at least n of
// them with a line, and returns them all in sequence.
func commandRecords(t *testing.T, m string, n int) []auditv1.Event {
	t.Helper()
	var got []auditv1.Event
	waitUntil(20*time.Second, func() bool {
		got = got[:0]
		withLine := 0
		for _, ev := range auditEvents(t, "exec-proxy-audit.log") {
			if ev.Annotations[annotation+"record"] == "command" && strings.Contains(ev.Annotations[annotation+"command"], m) {
				got = append(got, ev)
				if ev.Annotations[annotation+"command-line"] != "" {
					withLine++
				}
			}
		}
		return withLine >= n
	})
	sort.Slice(got, func(i, j int) bool { return seq(got[i]) < seq(got[j]) })
	for i, ev := range got {
		if seq(ev) != i+1 {
			t.Errorf("command record %d has sequence %d", i, seq(ev))
		}
	}
	return got
}

func seq(ev auditv1.Event) int {
	n, _ := strconv.Atoi(ev.Annotations[annotation+"sequence"])
	return n
}

// compareCommands matches the records with a line, in order, with the lines the shell ran.
func compareCommands(t *testing.T, ran []string, records []auditv1.Event) {
	t.Helper()
	var got []auditv1.Event
	for _, ev := range records {
		if ev.Annotations[annotation+"command-line"] == "" {
			t.Logf("withheld: %s", ev.Annotations[annotation+"confidence-reason"])
			continue
		}
		got = append(got, ev)
	}
	matched, low := 0, 0
	for i := range max(len(got), len(ran)) {
		switch {
		case i >= len(ran):
			t.Errorf("recorded %q, which the shell did not run", got[i].Annotations[annotation+"command-line"])
		case i >= len(got):
			t.Errorf("the shell ran %q, not recorded", ran[i])
		case got[i].Annotations[annotation+"command-line"] == ran[i]:
			matched++
			if got[i].Annotations[annotation+"confidence"] != "high" {
				low++
			}
		case got[i].Annotations[annotation+"confidence"] == "high":
			t.Errorf("recorded %q with high confidence; the shell ran %q", got[i].Annotations[annotation+"command-line"], ran[i])
		default:
			t.Logf("low: recorded %q (%s); the shell ran %q", got[i].Annotations[annotation+"command-line"],
				got[i].Annotations[annotation+"confidence-reason"], ran[i])
		}
	}
	rate := float64(matched) / float64(max(1, len(ran)))
	t.Logf("MATCH RATE: %d of %d lines the shell ran recorded as run (%.1f%%), %d of them low", matched, len(ran), 100*rate, low)
	if rate < 0.95 {
		t.Errorf("match rate %.1f%%, want at least 95%%", 100*rate)
	}
}

// checkMarkers: the session's recording has one marker per command record, with its line.
func checkMarkers(t *testing.T, records []auditv1.Event) {
	t.Helper()
	if len(records) == 0 {
		return
	}
	id := records[0].Annotations[annotation+"session-id"]
	var markers []string
	eventually(t, 10*time.Second, "the recording to be written", func() bool {
		f, err := os.Open(filepath.Join(clusterDir(), "recordings", id+".cast"))
		if err != nil {
			return false
		}
		defer f.Close()
		markers = markers[:0]
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev []any
			if json.Unmarshal(sc.Bytes(), &ev) == nil && len(ev) == 3 && ev[1] == "m" {
				markers = append(markers, ev[2].(string))
			}
		}
		return len(markers) == len(records)
	})
	for i, ev := range records {
		want := ev.Annotations[annotation+"command-line"]
		if want == "" {
			want = "(a line typed without echo)"
		}
		if markers[i] != want {
			t.Errorf("marker %d: %q, want %q", i, markers[i], want)
		}
	}
}
