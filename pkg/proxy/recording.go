package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RecordingConfig says which sessions are recorded as asciicast v2 files, and where.
type RecordingConfig struct {
	Dir    string // empty: no recordings
	NonTTY bool   // record sessions without a TTY too
	Stdin  bool   // record input ("i" events) as well as output
	// Policy, when set, chooses by namespace, user and group; its rules come before the flags.
	Policy *RecordingPolicy
	// FailClosed: a session that is to be recorded runs only while it is. One whose recording
	// cannot be made is refused, a full recording queue makes the session wait instead of
	// dropping events, and a recording that cannot be written ends the session.
	FailClosed bool
}

// recordingQueue bounds the events waiting for the disk. The relay never waits, unless recording
// is fail-closed: when it is full, events are dropped and counted.
const recordingQueue = 4096

// defaultSize is the terminal size written when the client never sent one.
var defaultSize = [2]int{80, 24}

type castEvent struct {
	at   time.Duration
	kind string // o, i or r
	data string
}

// recording writes one session's asciicast v2 file from a goroutine fed by a bounded queue.
type recording struct {
	path    string
	events  chan castEvent
	start   time.Time
	stdin   bool
	block   bool        // wait for room in the queue rather than drop (fail-closed)
	onFail  func(error) // called once when the file cannot be written
	dropped atomic.Int64
	done    chan struct{}
	once    sync.Once
	mu      sync.RWMutex // closed, against sends on the closed queue
	closed  bool
	err     error
}

// createCast creates a recording's file (a variable, for tests of slow and failing disks).
var createCast = func(path string) (io.WriteCloser, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

// RecordingHeaderKey holds a recording's RecordingMeta in its asciicast header.
const RecordingHeaderKey = "execproxy.dev/session"

// RecordingMeta says whose session a recording is.
type RecordingMeta struct {
	Session   string `json:"session"`
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Container string `json:"container,omitempty"`
	User      string `json:"user"`
}

// RecordingPath is where session id's recording is in dir.
func RecordingPath(dir, id string) string { return filepath.Join(dir, id+".cast") }

// newRecording creates the file of session s; the header waits for the first terminal size.
// onFail, if set, hears of the first write error.
func newRecording(cfg RecordingConfig, s *Session, stdin bool, onFail func(error)) (*recording, error) {
	path := RecordingPath(cfg.Dir, s.ID)
	f, err := createCast(path)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	r := &recording{path: path, events: make(chan castEvent, recordingQueue), start: time.Now(),
		stdin: stdin, block: cfg.FailClosed, onFail: onFail, done: make(chan struct{})}
	header := map[string]interface{}{
		"version": 2, "timestamp": r.start.Unix(),
		"command": strings.Join(s.Command, " "),
		"title":   fmt.Sprintf("%s %s/%s -c %s by %s (session %s)", s.Kind, s.Namespace, s.Pod, s.Container, s.User, s.ID),
		// Players ignore keys they do not know; the API serves a recording only in its namespace.
		RecordingHeaderKey: RecordingMeta{Session: s.ID, Namespace: s.Namespace, Pod: s.Pod, Container: s.Container, User: s.User},
	}
	go r.write(f, header)
	return r, nil
}

// add queues an event without waiting.
func (r *recording) add(kind string, data []byte) {
	if kind == "i" && !r.stdin {
		return
	}
	ev := castEvent{at: time.Since(r.start), kind: kind, data: string(data)}
	// The relay's last copy may still pass frames after the session ended and closed the recording.
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return
	}
	if r.block { // the writer drains the queue even after a write error, so this wait ends
		r.events <- ev
		return
	}
	select {
	case r.events <- ev:
	default:
		r.dropped.Add(1)
	}
}

// discard ends a recording of a session that did not start, and removes its file.
func (r *recording) discard() {
	_ = r.close()
	_ = os.Remove(r.path)
}

// close ends the recording and waits for the file to be written.
func (r *recording) close() error {
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		close(r.events)
		r.mu.Unlock()
	})
	<-r.done
	return r.err
}

func (r *recording) write(f io.WriteCloser, header map[string]interface{}) {
	defer close(r.done)
	w := bufio.NewWriter(f)
	var pending []castEvent
	size := defaultSize
	// The header carries the terminal size: hold events until the first resize (kubectl sends it
	// right after the upgrade), or until the session ends or has much to say without one.
	for ev := range r.events {
		if ev.kind == "r" {
			fmt.Sscanf(ev.data, "%dx%d", &size[0], &size[1])
			pending = append(pending, ev)
			break
		}
		if pending = append(pending, ev); len(pending) >= 64 {
			break
		}
	}
	header["width"], header["height"] = size[0], size[1]
	enc := json.NewEncoder(w)
	r.check(enc.Encode(header))
	for _, ev := range pending {
		r.check(enc.Encode([]interface{}{ev.at.Seconds(), ev.kind, ev.data}))
	}
	for ev := range r.events {
		if r.err == nil {
			r.check(enc.Encode([]interface{}{ev.at.Seconds(), ev.kind, ev.data}))
		}
	}
	if r.err == nil {
		r.check(w.Flush())
	}
	if err := f.Close(); err != nil {
		r.check(err)
	}
}

// check keeps the first write error and reports it; what follows is not written.
func (r *recording) check(err error) {
	if err == nil || r.err != nil {
		return
	}
	r.err = err
	if r.onFail != nil {
		r.onFail(err)
	}
}
