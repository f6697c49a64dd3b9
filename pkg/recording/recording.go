// Package recording writes sessions as asciicast v2 files, as the recording flags and the
// session policy choose. The engine feeds a session's recording through a Sink: the payload its frame readers
// read, and the terminal sizes.
package recording

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// Config says which sessions are recorded as asciicast v2 files, and where.
type Config struct {
	Dir    string // empty: no recordings
	NonTTY bool   // record sessions without a TTY too
	Stdin  bool   // record input ("i" events) as well as output
	// FailClosed: a session that is to be recorded runs only while it is. One whose recording
	// cannot be made is refused, a full recording queue makes the session wait instead of
	// dropping events, and a recording that cannot be written ends the session.
	FailClosed bool
	// Create creates a recording's file; nil: a new file only its owner reads. Tests make slow and
	// failing disks with it.
	Create func(path string) (io.WriteCloser, error)
	// Bucket, when set, keeps the recordings: Dir is then their spool, each file removed once its
	// whole recording is in the bucket. A part that cannot be uploaded ends a fail-closed session.
	Bucket *Bucket
	// Retention is how long the bucket keeps a recording (by its objects' age); 0: for good.
	Retention time.Duration
}

// Session is what a recording needs of a session: whose it is, for its header and the policy.
type Session struct {
	ID        string
	Kind      session.Kind
	Namespace string
	Pod       string
	Container string
	User      string
	Groups    []string
	Command   []string
	TTY       bool
}

// Sink is one session's recording, as the engine feeds it. Add queues an event: "o" output, "i"
// input (dropped unless Stdin), "r" a terminal size as WxH; its data is copied before it returns.
// Close ends the recording and waits for its file; Discard ends the recording of a session that
// did not start and removes its file. Dropped counts the events the queue had no room for.
type Sink interface {
	Add(kind string, data []byte)
	Stdin() bool
	Path() string // where the recording is now: the end record takes it after Close
	Dropped() int64
	Close() error
	Discard()
}

// What waits for the disk is bounded, in events and in bytes of data. When the queue is full, an
// event is dropped and counted, and a marker in the recording says where and how much: the relay
// never waits for the disk. Under fail-closed recording it waits instead, and nothing is dropped.
const (
	recordingQueue      = 4096
	recordingQueueBytes = 512 << 10
	// recordingChunk is the most data one event carries: a larger frame is several events.
	recordingChunk = 64 << 10
)

// defaultSize is the terminal size written when the client never sent one.
var defaultSize = [2]int{80, 24}

type castEvent struct {
	at   time.Duration
	kind string // o, i, r or m
	data []byte
	buf  *[]byte // data's buffer, from eventBufs; nil: not pooled
}

// eventBufs pool events' data by size, 512 bytes to recordingChunk, doubling: each event of a
// session's download would otherwise be a fresh chunk for the GC. A buffer holds at most twice its
// event's data, so the queue's bound in bytes of data bounds them too; data of at most
// minPooledData bytes, keystrokes and the like, is allocated as before (a 512-byte buffer each
// would make the queue's 4096 events 2 MiB). sync.Pool is the process's: a quiet session keeps none.
var eventBufs [eventClasses]sync.Pool

const (
	minPooledData = 256
	eventClasses  = 8 // 512 B to recordingChunk
)

// eventClass is the index in eventBufs of the buffers for n bytes, 256 < n <= recordingChunk.
func eventClass(n int) int { return bits.Len(uint(n-1)) - bits.Len(minPooledData) }

// newEventData copies data into a buffer of its own, pooled when it is large enough.
func newEventData(data []byte) ([]byte, *[]byte) {
	if len(data) <= minPooledData {
		return append([]byte(nil), data...), nil
	}
	c := eventClass(len(data))
	buf, _ := eventBufs[c].Get().(*[]byte)
	if buf == nil {
		b := make([]byte, 0, minPooledData<<(c+1))
		buf = &b
	}
	return append((*buf)[:0], data...), buf
}

// release gives ev's buffer back: its data is written, or not to be.
func (ev *castEvent) release() {
	if ev.buf != nil {
		eventBufs[eventClass(cap(*ev.buf))].Put(ev.buf)
		ev.buf, ev.data = nil, nil
	}
}

// writer writes one session's asciicast v2 file from a goroutine fed by a bounded queue.
type writer struct {
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
	up      *uploader // nil: no bucket

	q backlog
}

// backlog is what waits in a recording's queue, and what was dropped from it.
type backlog struct {
	mu     sync.Mutex
	room   *sync.Cond // on mu: the writer took events (fail-closed adds wait for room)
	queued int        // bytes of data in the queue
	// gapEvents and gapBytes were dropped since the last marker.
	gapEvents, gapBytes int
}

func createFile(path string) (io.WriteCloser, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

// HeaderKey holds a recording's Meta in its asciicast header.
const HeaderKey = "execproxy.dev/session"

// Meta says whose session a recording is.
type Meta struct {
	Session   string `json:"session"`
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Container string `json:"container,omitempty"`
	User      string `json:"user"`
}

// Path is where session id's recording is in dir.
func Path(dir, id string) string { return filepath.Join(dir, id+".cast") }

// New creates the file of session s; the header waits for the first terminal size. stdin says
// whether input is recorded (see Decide); onFail, if set, hears of the first write error.
func New(cfg Config, s Session, stdin bool, onFail func(error)) (Sink, error) {
	r, err := newWriter(cfg, s, stdin, onFail)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func newWriter(cfg Config, s Session, stdin bool, onFail func(error)) (*writer, error) {
	path := Path(cfg.Dir, s.ID)
	create := cfg.Create
	if create == nil {
		create = createFile
	}
	f, err := create(path)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	r := &writer{path: path, events: make(chan castEvent, recordingQueue), start: time.Now(),
		stdin: stdin, block: cfg.FailClosed, onFail: onFail, done: make(chan struct{})}
	r.q.room = sync.NewCond(&r.q.mu)
	header := map[string]interface{}{
		"version": 2, "timestamp": r.start.Unix(),
		"command": strings.Join(s.Command, " "),
		"title":   fmt.Sprintf("%s %s/%s -c %s by %s (session %s)", s.Kind, s.Namespace, s.Pod, s.Container, s.User, s.ID),
		// Players ignore keys they do not know; the API serves a recording only in its namespace.
		HeaderKey: Meta{Session: s.ID, Namespace: s.Namespace, Pod: s.Pod, Container: s.Container, User: s.User},
	}
	if cfg.Bucket != nil {
		r.up = newUploader(cfg.Bucket, s.ID, path, onFail)
		go r.up.run(r.done)
	}
	go r.write(f, header)
	return r, nil
}

// Add queues an event (several, for more than recordingChunk of data) without waiting, unless
// recording is fail-closed.
func (r *writer) Add(kind string, data []byte) {
	if kind == "i" && !r.stdin {
		return
	}
	at := time.Since(r.start)
	// The relay's last copy may still pass frames after the session ended and closed the recording.
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return
	}
	for first := true; first || len(data) > 0; first = false {
		n := chunkLen(data)
		ev := castEvent{at: at, kind: kind}
		ev.data, ev.buf = newEventData(data[:n])
		r.queue(ev)
		data = data[n:]
	}
}

// chunkLen is how much of data one event takes: at most recordingChunk, ending on a UTF-8
// character's boundary (a character cut in two would be recorded as two replacement characters).
func chunkLen(data []byte) int {
	if len(data) <= recordingChunk {
		return len(data)
	}
	for n := recordingChunk; n > recordingChunk-utf8.UTFMax; n-- {
		if utf8.RuneStart(data[n]) {
			return n
		}
	}
	return recordingChunk
}

func (r *writer) queue(ev castEvent) {
	n := len(ev.data)
	r.q.mu.Lock()
	if r.block { // the writer drains the queue even after a write error, so these waits end
		for r.q.queued+n > recordingQueueBytes {
			r.q.room.Wait()
		}
		r.q.queued += n
		r.q.mu.Unlock()
		r.events <- ev // not under q.mu: the writer takes it to give room back
		return
	}
	defer r.q.mu.Unlock()
	if r.q.gapEvents > 0 {
		marker := r.gapMarker(ev.at)
		if r.q.queued+n+len(marker.data) > recordingQueueBytes {
			r.drop(&ev)
			return
		}
		select {
		case r.events <- marker:
			r.q.queued += len(marker.data)
			r.q.gapEvents, r.q.gapBytes = 0, 0
		default:
			r.drop(&ev)
			return
		}
	}
	if r.q.queued+n > recordingQueueBytes {
		r.drop(&ev)
		return
	}
	select {
	case r.events <- ev:
		r.q.queued += n
	default:
		r.drop(&ev)
	}
}

// drop counts an event that is not recorded, and gives its buffer back. q.mu is held.
func (r *writer) drop(ev *castEvent) {
	r.dropped.Add(1)
	r.q.gapEvents++
	r.q.gapBytes += len(ev.data)
	ev.release()
}

// gapMarker is an asciicast marker ("m") saying what was dropped before it. q.mu is held.
func (r *writer) gapMarker(at time.Duration) castEvent {
	return castEvent{at: at, kind: "m", data: fmt.Appendf(nil, "exec-proxy: %d events (%d bytes) are missing here: the recording fell behind", r.q.gapEvents, r.q.gapBytes)}
}

// taken gives the room of events of n bytes the writer is done with back.
func (r *writer) taken(n int) {
	r.q.mu.Lock()
	r.q.queued -= n
	r.q.mu.Unlock()
	r.q.room.Broadcast()
}

// Stdin reports whether input is recorded.
func (r *writer) Stdin() bool { return r.stdin }

// Path is where the recording is now: with a bucket, its object once the bucket has it whole,
// else the spool file.
func (r *writer) Path() string {
	if r.up != nil {
		return r.up.location()
	}
	return r.path
}

// Dropped is how many events the queue had no room for.
func (r *writer) Dropped() int64 { return r.dropped.Load() }

// Discard ends a recording of a session that did not start, and removes its file.
func (r *writer) Discard() {
	if r.up != nil {
		r.up.discard()
	}
	_ = r.Close()
	_ = os.Remove(r.path)
}

// Close ends the recording and waits for the file to be written and, with a bucket, uploaded, for
// at most the upload's timeout (ErrUploadUnfinished past it). The file of a recording the bucket
// does not have whole stays in the spool.
func (r *writer) Close() error {
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.q.mu.Lock()
		missing := r.q.gapEvents > 0
		marker := r.gapMarker(time.Since(r.start))
		if missing {
			r.q.queued += len(marker.data) // the writer gives it back, as it does every event's
		}
		r.q.mu.Unlock()
		if missing { // the end of the recording is missing: say so there too
			r.events <- marker
		}
		close(r.events)
		r.mu.Unlock()
	})
	<-r.done
	if r.up == nil {
		return r.err
	}
	return errors.Join(r.err, r.up.wait())
}

func (r *writer) write(f io.WriteCloser, header map[string]interface{}) {
	defer close(r.done)
	file := &countWriter{w: f}
	w := bufio.NewWriter(file)
	var pending []castEvent
	var pendingBytes int
	size := defaultSize
	// The header carries the terminal size: hold events until the first resize (kubectl sends it
	// right after the upgrade), or until the session ends or has much to say without one. Held
	// events keep their room in the queue, so at most half of it is held: under fail-closed, the
	// relay waits for room, and room held here would never come back.
	for ev := range r.events {
		if ev.kind == "r" {
			fmt.Sscanf(string(ev.data), "%dx%d", &size[0], &size[1])
			pending = append(pending, ev)
			break
		}
		pending, pendingBytes = append(pending, ev), pendingBytes+len(ev.data)
		if len(pending) >= 64 || pendingBytes >= recordingQueueBytes/2 {
			break
		}
	}
	header["width"], header["height"] = size[0], size[1]
	var b batch
	line, err := json.Marshal(header) // as json.Encoder wrote it, less its newline
	r.check(err)
	if err == nil {
		b.lines = append(b.get(), line...)
		b.lines = append(b.lines, '\n')
	}
	for i := range pending {
		r.add(&b, &pending[i])
		if len(b.lines) >= batchBytes {
			r.end(&b, w, file)
		}
	}
	r.end(&b, w, file)
	for ev := range r.events {
		r.add(&b, &ev)
		if len(r.events) == 0 || len(b.lines) >= batchBytes {
			r.end(&b, w, file) // the last event always: a closed queue is empty
		}
	}
	if r.err == nil {
		r.check(w.Flush())
	}
	if err := f.Close(); err != nil {
		r.check(err)
	}
}

// A batch is the lines of the events the writer took from the queue while there were more,
// written together: one write of many events rather than some for each, and no copy through w's
// buffer for lines longer than it. Its buffer comes from lines, and goes back when it is written, so
// a quiet recording keeps none.
type batch struct {
	lines []byte
	buf   *[]byte
	taken int // bytes of the events' data: their room in the queue, given back once written
}

// batchBytes is the most a batch holds before it is written (and one event's line more).
const batchBytes = 64 << 10

// lines hold batches while they are encoded and written.
var lines = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxLine is the longest an event's line can be: a chunk of NUL bytes is six times its size in JSON.
const maxLine = 6*recordingChunk + 64

// maxPooledLines bounds what goes back to lines.
const maxPooledLines = batchBytes + maxLine

func (b *batch) get() []byte {
	if b.buf == nil {
		b.buf = lines.Get().(*[]byte)
		b.lines = (*b.buf)[:0]
	}
	return b.lines
}

// add puts ev's line in the batch, unless the recording cannot be written, and gives ev's buffer back.
func (r *writer) add(b *batch, ev *castEvent) {
	if r.err == nil {
		b.lines = appendEvent(b.get(), ev.at, ev.kind, ev.data)
	}
	b.taken += len(ev.data)
	ev.release()
}

// end writes the batch, gives its events' room in the queue back, and flushes w when the queue is
// empty (see flushIdle). Lines as long as w's buffer go to the file at once, after what w holds.
func (r *writer) end(b *batch, w *bufio.Writer, file *countWriter) {
	if len(b.lines) > 0 && r.err == nil {
		if len(b.lines) >= w.Available() {
			r.check(w.Flush())
			if r.err == nil {
				_, err := file.Write(b.lines)
				r.check(err)
			}
		} else {
			_, err := w.Write(b.lines)
			r.check(err)
		}
	}
	if b.buf != nil {
		if cap(b.lines) <= maxPooledLines {
			*b.buf = b.lines[:0]
			lines.Put(b.buf)
		}
		b.buf, b.lines = nil, nil
	}
	// Flushed before the room goes back: an Add waiting for it would fill the queue first, and
	// what is written would wait for the uploader until the session is quiet.
	r.flushIdle(w, file)
	if b.taken > 0 {
		r.taken(b.taken)
		b.taken = 0
	}
}

// flushIdle puts what is written into the file when the queue is empty, for the uploader to
// find there: only with a bucket, whose parts the file's whole events make.
func (r *writer) flushIdle(w *bufio.Writer, file *countWriter) {
	if r.up == nil || len(r.events) > 0 || r.err != nil {
		return
	}
	r.check(w.Flush())
	if r.err == nil {
		r.up.wrote(file.n)
	}
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// check keeps the first write error and reports it; what follows is not written.
func (r *writer) check(err error) {
	if err == nil || r.err != nil {
		return
	}
	r.err = err
	if r.onFail != nil {
		r.onFail(err)
	}
}
