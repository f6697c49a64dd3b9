package proxy

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

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
