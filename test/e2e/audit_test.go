//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

const annotation = "execproxy.dev/"

// auditEvents reads a JSON-lines audit log with the real audit.k8s.io/v1 types.
func auditEvents(t *testing.T, name string) []auditv1.Event {
	t.Helper()
	f, err := os.Open(filepath.Join(clusterDir(), "logs", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var events []auditv1.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev auditv1.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%s: a line that is not an audit Event: %v\n%s", name, err, sc.Text())
		}
		events = append(events, ev)
	}
	return events
}

// sessionRecords waits for the records whose command carries m, and returns them by record kind.
func sessionRecords(t *testing.T, m string, want map[string]int) map[string][]auditv1.Event {
	t.Helper()
	return recordsWhere(t, "the session audit records of "+m, func(ev auditv1.Event) bool {
		return strings.Contains(ev.Annotations[annotation+"command"], m)
	}, want)
}

// TestSessionAudit: every session has a start and an end record with the session's fields, joined
// to kube-apiserver's audit by its audit ID; every refused attempt has one refused record.
func TestSessionAudit(t *testing.T) {
	podUID := admin(t, "", "-n", "demo", "get", "pod", "demo", "-o", "jsonpath={.metadata.uid}")
	apiserverIDs := map[string]bool{}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			m := marker(t)
			res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "sh", "-c", "echo "+m+"; exit 3")
			if res.code != 3 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			recs := sessionRecords(t, m, map[string]int{"start": 1, "end": 1})
			start, end := recs["start"][0], recs["end"][0]
			if start.AuditID != end.AuditID || start.Annotations[annotation+"session-id"] != string(start.AuditID) {
				t.Errorf("start %s and end %s are not one session", start.AuditID, end.AuditID)
			}
			for _, ev := range []auditv1.Event{start, end} {
				a := ev.Annotations
				checks := map[string]bool{
					"user":            ev.User.Username == "admin" && contains(ev.User.Groups, "system:authenticated"),
					"verb":            ev.Verb == "create",
					"object":          ev.ObjectRef != nil && ev.ObjectRef.Namespace == "demo" && ev.ObjectRef.Name == "demo" && ev.ObjectRef.Subresource == "exec" && string(ev.ObjectRef.UID) == podUID,
					"container":       a[annotation+"container"] == "main",
					"node":            a[annotation+"node"] == "127.0.0.1" && a[annotation+"kubelet-address"] == "127.0.0.1:10250",
					"command":         a[annotation+"command"] == `["sh","-c","echo `+m+`; exit 3"]`,
					"tty and stdin":   a[annotation+"tty"] == "false" && a[annotation+"stdin"] == "false",
					"protocol":        a[annotation+"protocol"] == c.protocol,
					"user agent":      strings.HasPrefix(ev.UserAgent, "kubectl"),
					"source IPs":      len(ev.SourceIPs) > 0,
					"apiserver audit": a[annotation+"apiserver-audit-id"] != "",
					"code":            ev.ResponseStatus != nil && ev.ResponseStatus.Code == http.StatusSwitchingProtocols,
				}
				for what, ok := range checks {
					if !ok {
						t.Errorf("%s record: wrong %s: %+v", a[annotation+"record"], what, ev)
					}
				}
			}
			if start.Stage != auditv1.StageResponseStarted || end.Stage != auditv1.StageResponseComplete {
				t.Errorf("stages %s, %s", start.Stage, end.Stage)
			}
			a := end.Annotations
			// Read from the frames passing through: the exit code and each stream's payload.
			if a[annotation+"exit-code"] != "3" || a[annotation+"reason"] != "exited" ||
				a[annotation+"bytes-stdout"] != fmt.Sprint(len(m)+1) || a[annotation+"bytes-stderr"] != "" ||
				a[annotation+"duration"] == "" || end.StageTimestamp.Before(&start.StageTimestamp) {
				t.Errorf("end record: %+v", a)
			}
			apiserverIDs[a[annotation+"apiserver-audit-id"]] = true
		})
	}
	t.Run("joined to kube-apiserver's audit", func(t *testing.T) {
		for _, ev := range auditEvents(t, "kube-apiserver-audit.log") {
			if apiserverIDs[string(ev.AuditID)] && ev.ObjectRef != nil && ev.ObjectRef.APIGroup == "execproxy.dev" {
				delete(apiserverIDs, string(ev.AuditID))
			}
		}
		if len(apiserverIDs) > 0 {
			t.Errorf("%d session(s) with an Audit-ID kube-apiserver did not log: %v", len(apiserverIDs), apiserverIDs)
		}
	})
	t.Run("refused", func(t *testing.T) {
		m := marker(t)
		for _, up := range []upgrade{spdyUpgrade, wsUpgrade} {
			if code, _ := rawRequest(t, "viewer", up, kubeRoute+"/api/v1/namespaces/demo/pods/demo/exec?container=main&stdout=true&command="+m); code != http.StatusForbidden {
				t.Fatalf("%s: got %d, want 403", up.name, code)
			}
		}
		recs := sessionRecords(t, m, map[string]int{"refused": 2, "start": 0, "end": 0})
		for _, ev := range recs["refused"] {
			if ev.User.Username != "viewer" || ev.ResponseStatus == nil || ev.ResponseStatus.Code != http.StatusForbidden ||
				!strings.Contains(ev.ResponseStatus.Message, `cannot create resource "pods/exec"`) || ev.Annotations[annotation+"reason"] != "forbidden" {
				t.Errorf("refused record: %+v", ev)
			}
		}
	})
}

// unpairedSessions says which sessions in the audit log have a start record without an end
// record (or the refusal that follows a start that could not reach every destination), or an end
// without a start. Sessions may still be ending: it waits up to 30 s.
func unpairedSessions() error {
	var open map[string]int
	var err error
	waitUntil(30*time.Second, func() bool {
		open, err = openSessions()
		return err != nil || len(open) == 0
	})
	switch {
	case err != nil:
		return err
	case len(open) > 0:
		return fmt.Errorf("sessions without both a start and an end record: %v", open)
	}
	return nil
}

// openSessions reads the audit log and counts, by session, its start records less its end
// records, leaving out the sessions where they pair up.
func openSessions() (map[string]int, error) {
	data, err := os.ReadFile(filepath.Join(clusterDir(), "logs", "exec-proxy-audit.log"))
	if err != nil {
		return nil, err
	}
	open := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" { // an empty log: a run of tests that opened no session through exec-proxy
			continue
		}
		var ev auditv1.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			return nil, fmt.Errorf("a line that is not an audit Event: %w", err)
		}
		switch ev.Annotations[annotation+"record"] {
		case "start":
			open[string(ev.AuditID)]++
		case "end":
			open[string(ev.AuditID)]--
		case "refused": // a start one destination took and another did not, under fail-closed
			if open[string(ev.AuditID)] == 1 && ev.Annotations[annotation+"reason"] == "audit unavailable" {
				open[string(ev.AuditID)]--
			}
		}
	}
	for id, n := range open {
		if n == 0 {
			delete(open, id)
		}
	}
	return open, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestAuditFailurePolicy: a session whose start record cannot be written is refused under
// fail-closed, before its command runs, and runs under fail-open with the loss logged.
func TestAuditFailurePolicy(t *testing.T) {
	unwritable := "--session-audit-log-path=/dev/full" // every write fails with ENOSPC
	t.Run("fail-closed", func(t *testing.T) {
		restartExecProxy(t, unwritable)
		m := marker(t)
		for _, c := range clients {
			res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "touch", "/tmp/"+m)
			if res.code == 0 || !strings.Contains(res.stderr, "could not write the session's audit record") {
				t.Errorf("%s: want a refusal naming the audit, got exit %d: %s", c.name, res.code, res.stderr)
			}
		}
		if res := clients[1].kubectl(t, viaAPIServer, "admin", "", "exec", "demo", "-c", "main", "--", "test", "-e", "/tmp/"+m); res.code == 0 {
			t.Error("the refused session's command ran anyway")
		}
	})
	t.Run("fail-open", func(t *testing.T) {
		restartExecProxy(t, unwritable, "--session-audit-failure-policy=fail-open")
		res := clients[1].kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "echo", "unaudited")
		if res.code != 0 || res.stdout != "unaudited\n" {
			t.Fatalf("exit %d %q: %s", res.code, res.stdout, res.stderr)
		}
		log, _ := os.ReadFile(filepath.Join(clusterDir(), "logs", "exec-proxy.log"))
		if !strings.Contains(string(log), `"Session audit record not written" record="start"`) {
			t.Error("the lost start record was not logged")
		}
	})
}

// TestRecordingPlays: a TTY session through exec-proxy is recorded as an asciicast v2 file that
// the real asciinema reads, with what the user saw; its end record names the file.
func TestRecordingPlays(t *testing.T) {
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			m := marker(t)
			term := newTerminal(t, 100, 30, c.env, c.path(), "--kubeconfig", kubeconfig("admin"),
				"exec", "-it", "demo", "-c", "main", "--", "sh", "-c", "read line; echo \"rec-$line-"+m+"\"; exit 4")
			term.typeLine("42")
			term.waitFor("rec-42-" + m)
			if status := term.exitStatus(); status != "4" {
				t.Fatalf("kubectl exit %s; screen:\n%s", status, term.screen())
			}
			end := sessionRecords(t, m, map[string]int{"start": 1, "end": 1})["end"][0]
			a := end.Annotations
			file := a[annotation+"recording"]
			if a[annotation+"exit-code"] != "4" || a[annotation+"tty"] != "true" || a[annotation+"resizes"] == "0" || file == "" ||
				a[annotation+"recording-dropped"] != "0" {
				t.Fatalf("end record: %+v", a)
			}
			// asciinema reads the controlling terminal: give it one.
			out, err := exec.Command("script", "-qec", "asciinema cat "+file, "/dev/null").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "rec-42-"+m) {
				t.Errorf("asciinema cat %s: %v\n%s", file, err, out)
			}
			data, err := os.ReadFile(file)
			var header struct{ Version, Width, Height int }
			if err != nil || json.Unmarshal([]byte(strings.SplitN(string(data), "\n", 2)[0]), &header) != nil ||
				header.Version != 2 || header.Width != 100 || header.Height != 30 {
				t.Errorf("recording header: %v %+v %.300s", err, header, data)
			}
		})
	}
}

// TestPortForwardAudit: a port-forward's end record names the forwarded port and counts its data,
// read from the SPDY streams (kubectl 1.28) and from SPDY tunnelled over WebSocket (1.33).
func TestPortForwardAudit(t *testing.T) {
	for _, c := range []client{clients[0], clients[1]} {
		t.Run(c.name, func(t *testing.T) {
			before := len(auditEvents(t, "exec-proxy-audit.log"))
			s := c.start(t, viaExecProxy, "ns-user", "port-forward", "pod/demo", ":8080")
			s.waitFor(t, "Forwarding from 127.0.0.1:")
			body := httpGet(t, "http://127.0.0.1:"+forwarding.FindStringSubmatch(s.output())[1]+"/index.html")
			s.stop()
			var end *auditv1.Event
			eventually(t, 10*time.Second, "the port-forward's end record", func() bool {
				for _, ev := range auditEvents(t, "exec-proxy-audit.log")[before:] {
					if ev.Annotations[annotation+"kind"] == "portforward" && ev.Annotations[annotation+"record"] == "end" && ev.User.Username == "ns-user" {
						end = &ev
						return true
					}
				}
				return false
			})
			a := end.Annotations
			if a[annotation+"ports"] != "[8080]" || a[annotation+"bytes-data"] == "" || a[annotation+"bytes-data"] == "0" ||
				a[annotation+"protocol"] == "" || !strings.Contains(a[annotation+"exit-code"], "no exit code") {
				t.Errorf("end record (the response was %d bytes): %+v", len(body), a)
			}
		})
	}
}
