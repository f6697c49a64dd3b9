package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// castFile reads an asciicast v2 file: its header and its events.
func castFile(t *testing.T, path string) (map[string]interface{}, [][]interface{}) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20) // an event carries up to recordingChunk of data, escaped
	var header map[string]interface{}
	var events [][]interface{}
	for i := 0; sc.Scan(); i++ {
		if i == 0 {
			if err := json.Unmarshal(sc.Bytes(), &header); err != nil {
				t.Fatalf("header: %v", err)
			}
			continue
		}
		var ev []interface{}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || len(ev) != 3 {
			t.Fatalf("event %q: %v", sc.Text(), err)
		}
		events = append(events, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return header, events
}

func TestRecording(t *testing.T) {
	checkLeaks(t)
	kubelet := newFakeKubelet(t)
	p := newTestProxier(t, kubelet.caFile, Limits{}, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t)))
	cases := []struct {
		name   string
		cfg    RecordingConfig
		exec   execCase
		stdin  string
		size   [2]float64
		events map[string]string // kind → all its data, concatenated
	}{
		{"tty", RecordingConfig{}, execCase{command: []string{"size"}, tty: true}, "", [2]float64{120, 40},
			map[string]string{"o": "40 120\n", "r": "120x40"}},
		{"no tty, with input", RecordingConfig{NonTTY: true, Stdin: true}, execCase{command: []string{"cat"}}, "typed\n", [2]float64{80, 24},
			map[string]string{"o": "typed\n", "i": "typed\n"}},
		{"no tty, output only", RecordingConfig{NonTTY: true}, execCase{command: []string{"cat"}}, "secret\n", [2]float64{80, 24},
			map[string]string{"o": "secret\n"}},
		{"no tty, not recorded", RecordingConfig{}, execCase{command: []string{"echo", "x"}}, "", [2]float64{}, nil},
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
				var rec sessionaudit.Record
				select {
				case rec = <-records:
				case <-time.After(10 * time.Second):
					t.Fatal("no record")
				}
				if tc.events == nil {
					if entries, _ := os.ReadDir(tc.cfg.Dir); rec.Recording != "" || len(entries) != 0 {
						t.Errorf("recorded %q (%d files)", rec.Recording, len(entries))
					}
					return
				}
				header, events := castFile(t, rec.Recording)
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

// gatedFile is a recording file on a disk that takes nothing until release is closed, or fails.
type gatedFile struct {
	f       *os.File
	release <-chan struct{}
	fail    error
}

func (g *gatedFile) Write(p []byte) (int, error) {
	if g.fail != nil {
		return 0, g.fail
	}
	<-g.release
	return g.f.Write(p)
}

func (g *gatedFile) Close() error { return g.f.Close() }

func TestRecordingFailurePolicy(t *testing.T) {
	// The peers linger after exec-proxy refuses or ends a session: the fake kubelet waits out its
	// stream creation timeout, client-go its WebSocket heartbeat.
	checkLeaks(t, goleak.IgnoreTopFunction("k8s.io/kubelet/pkg/cri/streaming/remotecommand.(*v4ProtocolHandler).waitForStreams"),
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
	}{
		{"fail-open, slow disk: events dropped, the session never waits", false, "slow", []string{"stream", fmt.Sprint(lines)}, session.ReasonExited, true},
		{"fail-closed, slow disk: the session waits, nothing dropped", true, "slow", []string{"stream", fmt.Sprint(lines)}, session.ReasonExited, false},
		{"fail-open, no file: the session runs unrecorded", false, "missing", []string{"echo", "x"}, session.ReasonExited, false},
		{"fail-closed, no file: refused", true, "missing", []string{"echo", "x"}, "recording unavailable", false},
		{"fail-closed, disk full: the session is ended", true, "full", []string{"stream", "1000000"}, session.ReasonRecordingFailed, false},
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
				defer func(c func(string) (io.WriteCloser, error)) { createCast = c }(createCast)
				createCast = func(path string) (io.WriteCloser, error) {
					if tc.disk == "missing" {
						return nil, fs.ErrNotExist
					}
					f, err := os.Create(path)
					if tc.disk == "full" {
						return &gatedFile{f: f, fail: syscall.ENOSPC}, err
					}
					return &gatedFile{f: f, release: release}, err
				}
				p.Recording = RecordingConfig{Dir: t.TempDir(), NonTTY: true, FailClosed: tc.failClosed}
				srv, records := frontWithRecords(t, p)
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
					if _, events := castFile(t, rec.Recording); !tc.dropped && len(events) < lines/4 {
						t.Errorf("%d events recorded", len(events))
					}
				}
			})
		}
	}
}

// TestRecordingQueueBytes: what waits for a stalled disk is bounded in bytes, not in events
// only: 40 stdin frames of 1 MiB once held 40 MiB (and 16 MiB frames 623 MiB). Fail-open drops
// what is beyond the bound and says so in the recording (a marker where events are missing) and in
// the count the end record gets; fail-closed makes the relay wait and drops nothing.
func TestRecordingQueueBytes(t *testing.T) {
	const frames, frameLen = 40, 1 << 20
	for _, failClosed := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail-closed=%v", failClosed), func(t *testing.T) {
			checkLeaks(t)
			release := make(chan struct{})
			defer func(c func(string) (io.WriteCloser, error)) { createCast = c }(createCast)
			createCast = func(path string) (io.WriteCloser, error) {
				f, err := os.Create(path)
				return &gatedFile{f: f, release: release}, err
			}
			s := &Session{ID: "bytes", Kind: session.KindExec, Command: []string{"cat"}}
			r, err := newRecording(RecordingConfig{Dir: t.TempDir(), FailClosed: failClosed}, s, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			frame := []byte(strings.Repeat("é", frameLen/2)) // a frame's end is a character's end
			added := make(chan struct{})
			go func() {
				defer close(added)
				for i := 0; i < frames; i++ {
					r.add("i", frame)
				}
			}()
			if failClosed {
				eventuallyTrue(t, func() bool { r.qmu.Lock(); defer r.qmu.Unlock(); return r.queued > recordingQueueBytes-recordingChunk })
			} else {
				<-added // the relay never waits
			}
			r.qmu.Lock()
			queued := r.queued
			r.qmu.Unlock()
			if queued > recordingQueueBytes {
				t.Errorf("%d bytes queued for a stalled disk, more than %d", queued, recordingQueueBytes)
			}
			close(release)
			<-added
			if err := r.close(); err != nil {
				t.Fatal(err)
			}
			_, events := castFile(t, r.path)
			var recorded, missing, missingEvents int
			for _, ev := range events {
				switch data := ev[2].(string); ev[1] {
				case "i":
					recorded += len(data)
				case "m":
					var n, b int
					if _, err := fmt.Sscanf(data, "exec-proxy: %d events (%d bytes) are missing here", &n, &b); err != nil {
						t.Errorf("marker %q: %v", data, err)
					}
					missingEvents, missing = missingEvents+n, missing+b
				}
			}
			if recorded+missing != frames*len(frame) || int64(missingEvents) != r.dropped.Load() {
				t.Errorf("%d bytes recorded, %d missing (%d events, %d counted dropped), of %d", recorded, missing, missingEvents, r.dropped.Load(), frames*len(frame))
			}
			if failClosed && missing > 0 {
				t.Errorf("fail-closed recording dropped %d bytes", missing)
			}
			if !failClosed && missing == 0 {
				t.Error("nothing dropped: the stalled disk's queue held it all")
			}
		})
	}
}

func TestChunkLen(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		want int
	}{
		{"short", []byte("abc"), 3},
		{"exactly a chunk", make([]byte, recordingChunk), recordingChunk},
		{"longer", make([]byte, recordingChunk+1), recordingChunk},
		{"a character across the cut", append(make([]byte, recordingChunk-1), "é"...), recordingChunk - 1},
		{"not UTF-8", append(make([]byte, recordingChunk-3), 0x80, 0x80, 0x80, 0x80, 0x80), recordingChunk},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := chunkLen(tc.data); got != tc.want {
				t.Errorf("chunkLen = %d, want %d", got, tc.want)
			}
		})
	}
}
