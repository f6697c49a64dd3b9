//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// TestAuditExitZeroWithStdin: a session that exits 0 with piped stdin is recorded as such, the
// input counted.
func TestAuditExitZeroWithStdin(t *testing.T) {
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			m := marker(t)
			res := c.kubectl(t, viaExecProxy, "admin", "hello\n", "exec", "-i", "demo", "-c", "main", "--", "sh", "-c", "cat; echo "+m)
			if res.code != 0 || res.stdout != "hello\n"+m+"\n" {
				t.Fatalf("exit %d, stdout %q: %s", res.code, res.stdout, res.stderr)
			}
			a := sessionRecords(t, m, map[string]int{"start": 1, "end": 1})["end"][0].Annotations
			if a[annotation+"exit-code"] != "0" || a[annotation+"reason"] != "exited" || a[annotation+"stdin"] != "true" ||
				a[annotation+"bytes-stdin"] != "6" || a[annotation+"bytes-stdout"] != fmt.Sprint(6+len(m)+1) {
				t.Errorf("end record: %+v", a)
			}
		})
	}
}

// endRecordsSince returns the end records of kind by user written after the first skip events.
func endRecordsSince(t *testing.T, skip int, kind, user string) []auditv1.Event {
	var out []auditv1.Event
	for _, ev := range auditEvents(t, "exec-proxy-audit.log")[skip:] {
		if ev.Annotations[annotation+"kind"] == kind && ev.Annotations[annotation+"record"] == "end" && ev.User.Username == user {
			out = append(out, ev)
		}
	}
	return out
}

// TestAuditAttach: an attach session's end record has no command and counts what was typed and echoed.
func TestAuditAttach(t *testing.T) {
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			before := len(auditEvents(t, "exec-proxy-audit.log"))
			s := c.start(t, viaExecProxy, "admin", "attach", "-i", "echo")
			s.waitFor(t, "pressing enter")
			m := marker(t)
			if _, err := io.WriteString(s.stdin, m+"\n"); err != nil {
				t.Fatal(err)
			}
			s.waitFor(t, "echo: "+m)
			if code := s.wait(t); code != 0 {
				t.Fatalf("attach exited %d: %s", code, s.output())
			}
			var ends []auditv1.Event
			eventually(t, 10*time.Second, "the attach's end record", func() bool {
				ends = endRecordsSince(t, before, "attach", "admin")
				return len(ends) > 0
			})
			a := ends[0].Annotations
			if len(ends) != 1 || a[annotation+"command"] != "" || a[annotation+"stdin"] != "true" || a[annotation+"container"] != "echo" ||
				a[annotation+"bytes-stdin"] != fmt.Sprint(len(m)+1) || a[annotation+"bytes-stdout"] == "" || a[annotation+"protocol"] != c.protocol ||
				ends[0].ObjectRef.Subresource != "attach" {
				t.Errorf("%d end records; the first: %+v", len(ends), a)
			}
		})
	}
}

// TestRecordingPolicy: a policy file chooses the sessions recorded beyond the flags: here every
// session in namespace demo with its input, except ns-user's.
func TestRecordingPolicy(t *testing.T) {
	policy := filepath.Join(t.TempDir(), "recording-policy.yaml")
	rules := "rules:\n- users: [ns-user]\n  record: none\n- namespaces: [demo]\n  record: all\n  stdin: true\n"
	if err := os.WriteFile(policy, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	restartExecProxy(t, "--recording-policy-file="+policy)
	cases := []struct {
		user     string
		recorded bool
	}{{"admin", true}, {"ns-user", false}}
	for _, tc := range cases {
		t.Run(tc.user, func(t *testing.T) {
			m := marker(t)
			if res := clients[1].kubectl(t, viaExecProxy, tc.user, "typed-"+m+"\n", "exec", "-i", "demo", "-c", "main", "--", "sh", "-c", "cat; echo "+m); res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			file := sessionRecords(t, m, map[string]int{"start": 1, "end": 1})["end"][0].Annotations[annotation+"recording"]
			if (file != "") != tc.recorded {
				t.Fatalf("recording %q, want recorded %v", file, tc.recorded)
			}
			if !tc.recorded {
				return
			}
			data, err := os.ReadFile(file)
			if err != nil || !strings.Contains(string(data), `"i","typed-`+m) || !strings.Contains(string(data), `"o","typed-`+m) {
				t.Errorf("recording %s lacks the input or output: %v\n%.500s", file, err, data)
			}
		})
	}
}

// TestRecordingFailClosed: with fail-closed recording, a session that must be recorded and cannot
// be (its recording directory is gone) is refused with a 503 before its command runs.
func TestRecordingFailClosed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "recordings")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	restartExecProxy(t, "--recording-dir="+dir, "--record-non-tty", "--recording-failure-policy=fail-closed")
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	for _, c := range []client{clients[0], clients[1]} {
		t.Run(c.name, func(t *testing.T) {
			m := marker(t)
			res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "touch", "/tmp/"+m)
			if res.code == 0 || !strings.Contains(res.stderr, "could not record the session") {
				t.Errorf("want the fail-closed refusal, got exit %d: %s", res.code, res.stderr)
			}
			if res := clients[1].kubectl(t, viaAPIServer, "admin", "", "exec", "demo", "-c", "main", "--", "test", "-e", "/tmp/"+m); res.code == 0 {
				t.Error("the refused session's command ran anyway")
			}
			refused := sessionRecords(t, m, map[string]int{"start": 0, "end": 0})["refused"]
			if len(refused) == 0 {
				t.Error("no refused record")
			}
			for _, ev := range refused {
				if ev.ResponseStatus.Code != 503 || ev.Annotations[annotation+"reason"] != "recording unavailable" {
					t.Errorf("refused record: %+v", ev)
				}
			}
		})
	}
}
