package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
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
}

// recordingQueue bounds the events waiting for the disk. The relay never waits: when it is full,
// events are dropped and counted.
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
	dropped atomic.Int64
	done    chan struct{}
	once    sync.Once
	err     error
}

// newRecording creates the file of session s; the header waits for the first terminal size.
func newRecording(cfg RecordingConfig, s *Session) (*recording, error) {
	path := filepath.Join(cfg.Dir, s.ID+".cast")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	r := &recording{path: path, events: make(chan castEvent, recordingQueue), start: time.Now(),
		stdin: cfg.Stdin, done: make(chan struct{})}
	header := map[string]interface{}{
		"version": 2, "timestamp": r.start.Unix(),
		"command": strings.Join(s.Command, " "),
		"title":   fmt.Sprintf("%s %s/%s -c %s by %s (session %s)", s.Kind, s.Namespace, s.Pod, s.Container, s.User, s.ID),
	}
	go r.write(f, header)
	return r, nil
}

// add queues an event without waiting.
func (r *recording) add(kind string, data []byte) {
	if kind == "i" && !r.stdin {
		return
	}
	select {
	case r.events <- castEvent{at: time.Since(r.start), kind: kind, data: string(data)}:
	default:
		r.dropped.Add(1)
	}
}

// close ends the recording and waits for the file to be written.
func (r *recording) close() error {
	r.once.Do(func() { close(r.events) })
	<-r.done
	return r.err
}

func (r *recording) write(f *os.File, header map[string]interface{}) {
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
	_ = enc.Encode(header)
	for _, ev := range pending {
		_ = enc.Encode([]interface{}{ev.at.Seconds(), ev.kind, ev.data})
	}
	for ev := range r.events {
		_ = enc.Encode([]interface{}{ev.at.Seconds(), ev.kind, ev.data})
	}
	if err := w.Flush(); err != nil {
		r.err = err
	}
	if err := f.Close(); err != nil && r.err == nil {
		r.err = err
	}
}
