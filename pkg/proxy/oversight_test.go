package proxy

import (
	"io"
	"sync"
	"testing"
	"time"

	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// TestCommandRecords: a line typed in a TTY session and echoed by its terminal is a command record,
// whichever way the session goes: SPDY, WebSocket translated for the kubelet, and WebSocket to a
// kubelet that serves it (the frame readers hand the tracker both directions on each); a session
// without a TTY, or with commands off, has none.
func TestCommandRecords(t *testing.T) {
	checkLeaks(t)
	for _, k := range []struct {
		name       string
		webSockets bool
	}{{"kubelet-spdy", false}, {"kubelet-websocket", true}} {
		kubelet := newFakeKubeletWith(t, fakeKubeletOptions{webSockets: k.webSockets})
		n := nodeAt("n1", "127.0.0.1", kubelet.port(t))
		if k.webSockets {
			n.Status.DeclaredFeatures = []string{nodeconn.ExtendWebSocketsToKubelet}
		}
		cases := []struct {
			name     string
			tty      bool
			commands bool
			keys     string
			want     string // the command record's line; "": none
		}{
			{"tty", true, true, "echo one\r\n", "echo one"},
			{"tty, the session ends right after Enter", true, true, "rm -rf x\r", "rm -rf x"},
			{"no tty", false, true, "echo one\r\n", ""},
			{"commands off", true, false, "echo one\r\n", ""},
		}
		for _, protocol := range []string{"spdy", "websocket"} {
			for _, tc := range cases {
				t.Run(k.name+"/"+protocol+"/"+tc.name, func(t *testing.T) {
					// A proxier of its own: the last case's session reads its Proxier's Audit after its
					// end record, which nextRecord waits for.
					p := newTestProxier(t, kubelet.caFile, Limits{}, runningPod("p", "n1", "a"), n)
					srv, records := frontWithRecords(t, p)
					b := &auditBackend{}
					p.Audit = sessionaudit.NewAuditor(b, sessionaudit.FailClosed)
					p.Audit.Commands = tc.commands
					// cat echoes what is typed, as a terminal does; each key is typed once the last one's
					// echo came back, as a person types.
					typist := newTypist(tc.keys)
					c := execCase{command: []string{"cat"}, tty: tc.tty, stdin: typist, stdout: typist}
					if _, err := execVia(t, srv, protocol, "alice", c); err != nil {
						t.Fatal(err)
					}
					nextRecord(t, records)
					got := b.record("command")
					switch {
					case tc.want == "" && got != nil:
						t.Errorf("a command record: %v", got)
					case tc.want != "" && got == nil:
						t.Errorf("no command record; records: %v", b.events)
					case tc.want != "" && (got[sessionaudit.AnnotationCommandLine] != tc.want || got[sessionaudit.AnnotationSequence] != "1"):
						t.Errorf("command record %v, want line %q, sequence 1", got, tc.want)
					}
				})
			}
		}
	}
}

// typist types keys one at a time, each once the output echoed all the keys before it (or 5 s
// passed): its Read is the session's stdin, its Write sees the session's output.
type typist struct {
	keys  []byte
	typed int
	mu    sync.Mutex
	cond  sync.Cond
	seen  int
}

func newTypist(keys string) *typist {
	t := &typist{keys: []byte(keys)}
	t.cond.L = &t.mu
	return t
}

func (t *typist) Read(p []byte) (int, error) {
	if t.typed == len(t.keys) {
		return 0, io.EOF
	}
	t.mu.Lock()
	deadline := time.AfterFunc(5*time.Second, func() { t.mu.Lock(); t.seen = len(t.keys); t.cond.Broadcast(); t.mu.Unlock() })
	for t.seen < t.typed {
		t.cond.Wait()
	}
	t.mu.Unlock()
	deadline.Stop()
	p[0] = t.keys[t.typed]
	t.typed++
	return 1, nil
}

func (t *typist) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.seen += len(p)
	t.cond.Broadcast()
	t.mu.Unlock()
	return len(p), nil
}
