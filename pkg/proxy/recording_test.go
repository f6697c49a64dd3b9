package proxy

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/component-base/metrics/testutil"

	"github.com/exec-proxy/exec-proxy/pkg/policy"
	"github.com/exec-proxy/exec-proxy/pkg/recording"
	"github.com/exec-proxy/exec-proxy/pkg/recording/recordingtest"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

func TestRecording(t *testing.T) {
	checkLeaks(t)
	kubelet := newFakeKubelet(t)
	p := newTestProxier(t, kubelet.caFile, Limits{}, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t)))
	cases := []struct {
		name   string
		cfg    recording.Config
		exec   execCase
		stdin  string
		size   [2]float64
		events map[string]string // kind → all its data, concatenated
	}{
		{"tty", recording.Config{}, execCase{command: []string{"size"}, tty: true}, "", [2]float64{120, 40},
			map[string]string{"o": "40 120\n", "r": "120x40"}},
		{"no tty, with input", recording.Config{NonTTY: true, Stdin: true}, execCase{command: []string{"cat"}}, "typed\n", [2]float64{80, 24},
			map[string]string{"o": "typed\n", "i": "typed\n"}},
		{"no tty, output only", recording.Config{NonTTY: true}, execCase{command: []string{"cat"}}, "secret\n", [2]float64{80, 24},
			map[string]string{"o": "secret\n"}},
		{"no tty, not recorded", recording.Config{}, execCase{command: []string{"echo", "x"}}, "", [2]float64{}, nil},
	}
	for _, protocol := range []string{"spdy", "websocket"} {
		for _, tc := range cases {
			t.Run(protocol+"/"+tc.name, func(t *testing.T) {
				tc.cfg.Dir = t.TempDir()
				p.Recording = tc.cfg
				srv, records := frontWithRecords(t, p)
				if tc.stdin != "" {
					tc.exec.stdin = strings.NewReader(tc.stdin)
				}
				if _, err := execVia(t, srv, protocol, "alice", tc.exec); err != nil {
					t.Fatal(err)
				}
				rec := nextRecord(t, records)
				if tc.events == nil {
					notRecorded(t, rec, tc.cfg.Dir)
					return
				}
				header, events := recordingtest.ReadCast(t, rec.Recording)
				if header["version"] != float64(2) || header["width"] != tc.size[0] || header["height"] != tc.size[1] ||
					!strings.Contains(header["title"].(string), "alice") {
					t.Errorf("header %v", header)
				}
				got := map[string]string{}
				for _, ev := range events {
					got[ev[1].(string)] += ev[2].(string)
				}
				for kind, want := range tc.events {
					if got[kind] != want {
						t.Errorf("%q events: %q, want %q", kind, got[kind], want)
					}
				}
				if got["i"] != "" && tc.events["i"] == "" {
					t.Errorf("input recorded without --record-stdin: %q", got["i"])
				}
			})
		}
	}
}

func TestRecordingFailurePolicy(t *testing.T) {
	// The peers linger after exec-proxy refuses or ends a session: the fake kubelet waits out its
	// stream creation timeout, client-go its WebSocket heartbeat.
	checkLeaks(t, goleak.IgnoreTopFunction("k8s.io/cri-streaming/pkg/streaming/remotecommand.(*v4ProtocolHandler).waitForStreams"),
		goleak.IgnoreTopFunction("k8s.io/client-go/tools/remotecommand.(*heartbeat).start"))
	kubelet := newFakeKubelet(t)
	p := newTestProxier(t, kubelet.caFile, Limits{}, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t)))
	const lines = 6000 // more output events than the recording queue holds
	cases := []struct {
		name       string
		failClosed bool
		disk       string // slow: takes nothing for a while; full: every write fails; missing: no file
		command    []string
		reason     string // of the end record, or of the refusal
		dropped    bool
		result     string // recordings_total's label counted once
	}{
		{"fail-open, slow disk: events dropped, the session never waits", false, "slow", []string{"stream", fmt.Sprint(lines)}, session.ReasonExited, true, "incomplete"},
		{"fail-closed, slow disk: the session waits, nothing dropped", true, "slow", []string{"stream", fmt.Sprint(lines)}, session.ReasonExited, false, "complete"},
		{"fail-open, no file: the session runs unrecorded", false, "missing", []string{"echo", "x"}, session.ReasonExited, false, "not_started"},
		{"fail-closed, no file: refused", true, "missing", []string{"echo", "x"}, "recording unavailable", false, "not_started"},
		{"fail-closed, disk full: the session is ended", true, "full", []string{"stream", "1000000"}, session.ReasonRecordingFailed, false, "incomplete"},
	}
	for _, protocol := range []string{"spdy", "websocket"} {
		for _, tc := range cases {
			t.Run(protocol+"/"+tc.name, func(t *testing.T) {
				// The disk takes nothing until the client has had all its output (fail-open), or
				// for a while (fail-closed: the session cannot finish before).
				release, once := make(chan struct{}), sync.Once{}
				open := func() { once.Do(func() { close(release) }) }
				delay := 5 * time.Second
				if tc.failClosed {
					delay = 300 * time.Millisecond
				}
				time.AfterFunc(delay, open)
				create := func(path string) (io.WriteCloser, error) {
					if tc.disk == "missing" {
						return nil, fs.ErrNotExist
					}
					f, err := os.Create(path)
					if tc.disk == "full" {
						return &recordingtest.GatedFile{F: f, Fail: syscall.ENOSPC}, err
					}
					return &recordingtest.GatedFile{F: f, Release: release}, err
				}
				p.Recording = recording.Config{Dir: t.TempDir(), NonTTY: true, FailClosed: tc.failClosed, Create: create}
				srv, records := frontWithRecords(t, p)
				before := recordingCounts(t)
				out, err := execVia(t, srv, protocol, "alice", execCase{command: tc.command})
				open()
				var rec sessionaudit.Record
				select {
				case rec = <-records:
				case <-time.After(10 * time.Second):
					t.Fatal("no record")
				}
				if rec.Reason != tc.reason || (rec.RecordingDropped > 0) != tc.dropped {
					t.Errorf("reason %q, %d recording events dropped; want %q, dropped %v (exec: %v)", rec.Reason, rec.RecordingDropped, tc.reason, tc.dropped, err)
				}
				after := recordingCounts(t)
				for _, result := range []string{"complete", "incomplete", "not_started"} {
					want := before[result]
					if result == tc.result {
						want++
					}
					if after[result] != want {
						t.Errorf("recordings_total{result=%q} went from %v to %v, want %v", result, before[result], after[result], want)
					}
				}
				if tc.disk == "full" && !strings.Contains(rec.RecordingError, "no space left") {
					t.Errorf("recording error %q, want the disk's", rec.RecordingError)
				}
				switch {
				case tc.reason == "recording unavailable":
					if err == nil || !strings.Contains(err.Error(), "could not record the session") || rec.Code != 503 {
						t.Errorf("want a 503 refusal, got %v (code %d)", err, rec.Code)
					}
				case tc.disk == "slow":
					if err != nil || len(out) != lines*1024 {
						t.Errorf("exec: %v, %d bytes of %d", err, len(out), lines*1024)
					}
					if _, events := recordingtest.ReadCast(t, rec.Recording); !tc.dropped && len(events) < lines/4 {
						t.Errorf("%d events recorded", len(events))
					}
				}
			})
		}
	}
}

// recordingCounts reads recordings_total by result.
func recordingCounts(t *testing.T) map[string]float64 {
	t.Helper()
	counts := map[string]float64{}
	for _, result := range []string{"complete", "incomplete", "not_started"} {
		v, err := testutil.GetCounterMetricValue(recordingsTotal.WithLabelValues(result))
		if err != nil {
			t.Fatalf("recordings_total{result=%q}: %v", result, err)
		}
		counts[result] = v
	}
	return counts
}

// A session policy rule's recording choice replaces the flags' for its sessions; a rule that says
// nothing of recording leaves the flags'.
func TestRecordingPolicyChoice(t *testing.T) {
	checkLeaks(t)
	kubelet := newFakeKubelet(t)
	p := newTestProxier(t, kubelet.caFile, Limits{}, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t)))
	yes, no := true, false
	cat := execCase{command: []string{"cat"}}
	cases := []struct {
		name   string
		flags  recording.Config
		rule   *recording.Choice
		exec   execCase
		events map[string]string // kind → all its data; nil: not recorded
	}{
		{"rule records all, the flags only terminals", recording.Config{}, &recording.Choice{Record: recording.RecordAll}, cat,
			map[string]string{"o": "typed\n"}},
		{"rule records input, the flags do not", recording.Config{}, &recording.Choice{Record: recording.RecordAll, Stdin: &yes}, cat,
			map[string]string{"o": "typed\n", "i": "typed\n"}},
		{"rule records no input, the flags do", recording.Config{NonTTY: true, Stdin: true}, &recording.Choice{Record: recording.RecordAll, Stdin: &no}, cat,
			map[string]string{"o": "typed\n"}},
		{"rule's input unset: the flag's", recording.Config{Stdin: true}, &recording.Choice{Record: recording.RecordAll}, cat,
			map[string]string{"o": "typed\n", "i": "typed\n"}},
		{"rule records nothing, the flags all", recording.Config{NonTTY: true, Stdin: true}, &recording.Choice{Record: recording.RecordNone}, cat, nil},
		{"rule records terminals, the flags all", recording.Config{NonTTY: true}, &recording.Choice{Record: recording.RecordTTY}, cat, nil},
		{"rule records terminals, a terminal", recording.Config{}, &recording.Choice{Record: recording.RecordTTY}, execCase{command: []string{"size"}, tty: true},
			map[string]string{"o": "40 120\n"}},
		{"rule says nothing of recording: the flags'", recording.Config{NonTTY: true}, nil, cat, map[string]string{"o": "typed\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.flags.Dir = t.TempDir()
			p.Recording = tc.flags
			p.Policy = policyOf(t, policy.Rule{Name: "r", Recording: tc.rule})
			srv, records := frontWithRecords(t, p)
			if !tc.exec.tty {
				tc.exec.stdin = strings.NewReader("typed\n")
			}
			if _, err := execVia(t, srv, "spdy", "alice", tc.exec); err != nil {
				t.Fatal(err)
			}
			rec := nextRecord(t, records)
			if tc.events == nil {
				notRecorded(t, rec, tc.flags.Dir)
				return
			}
			if rec.Recording == "" {
				t.Fatal("not recorded")
			}
			_, events := recordingtest.ReadCast(t, rec.Recording)
			got := map[string]string{}
			for _, ev := range events {
				if kind := ev[1].(string); kind != "r" {
					got[kind] += ev[2].(string)
				}
			}
			if !reflect.DeepEqual(got, tc.events) {
				t.Errorf("events %q, want %q", got, tc.events)
			}
		})
	}
}

// nextRecord is the next session's end record.
func nextRecord(t *testing.T, records <-chan sessionaudit.Record) sessionaudit.Record {
	t.Helper()
	select {
	case rec := <-records:
		return rec
	case <-time.After(10 * time.Second):
		t.Fatal("no record")
	}
	return sessionaudit.Record{}
}

// notRecorded checks rec names no recording and dir holds none.
func notRecorded(t *testing.T, rec sessionaudit.Record, dir string) {
	t.Helper()
	if entries, _ := os.ReadDir(dir); rec.Recording != "" || len(entries) != 0 {
		t.Errorf("recorded %q (%d files)", rec.Recording, len(entries))
	}
}
