package recording

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/exec-proxy/exec-proxy/internal/poll"
	"github.com/exec-proxy/exec-proxy/pkg/recording/recordingtest"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// TestRecordingQueueBytes: what waits for a stalled disk is bounded in bytes, not in events
// only: 40 stdin frames of 1 MiB once held 40 MiB (and 16 MiB frames 623 MiB). Fail-open drops
// what is beyond the bound and says so in the recording (a marker where events are missing) and in
// the count the end record gets; fail-closed makes the relay wait and drops nothing.
func TestRecordingQueueBytes(t *testing.T) {
	const frames, frameLen = 40, 1 << 20
	for _, failClosed := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail-closed=%v", failClosed), func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			release := make(chan struct{})
			create := func(path string) (io.WriteCloser, error) {
				f, err := os.Create(path)
				return &recordingtest.GatedFile{F: f, Release: release}, err
			}
			s := Session{ID: "bytes", Kind: session.KindExec, Command: []string{"cat"}}
			r, err := newWriter(Config{Dir: t.TempDir(), FailClosed: failClosed, Create: create}, s, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			frame := []byte(strings.Repeat("é", frameLen/2)) // a frame's end is a character's end
			added := make(chan struct{})
			go func() {
				defer close(added)
				for i := 0; i < frames; i++ {
					r.Add("i", frame)
				}
			}()
			if failClosed {
				poll.Until(t, func() bool {
					r.q.mu.Lock()
					defer r.q.mu.Unlock()
					return r.q.queued > recordingQueueBytes-recordingChunk
				})
			} else {
				<-added // the relay never waits
			}
			r.q.mu.Lock()
			queued := r.q.queued
			r.q.mu.Unlock()
			if queued > recordingQueueBytes {
				t.Errorf("%d bytes queued for a stalled disk, more than %d", queued, recordingQueueBytes)
			}
			close(release)
			<-added
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			_, events := recordingtest.ReadCast(t, r.path)
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
			// Every byte counted into the queue was given back, the end's gap marker's too.
			if r.q.queued != 0 {
				t.Errorf("%d bytes still counted in the queue after the end", r.q.queued)
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

// TestWriterLines: what the writer's batches put in the file is what it wrote an event at a time:
// the header with the first resize's size, then one appendEvent line for each event, every byte of
// the data in order, whatever the events' sizes (unpooled, each of the pooled sizes, split across
// chunks, lines longer than a batch); and the room of every event is given back.
func TestWriterLines(t *testing.T) {
	yes := strings.Repeat(strings.Repeat("a", 16<<10-1)+"\n", 8)
	cases := []struct {
		name   string
		kind   string
		chunks []string
	}{
		{"keystrokes", "i", strings.Split("ls -l\r\nexit\r\n", "")},
		{"unpooled and pooled sizes", "o", []string{yes[:256], yes[:257], yes[:512], yes[:513], yes[:4<<10], yes[:32<<10], yes[:64<<10]}},
		{"dd blocks", "o", split(yes[:64<<10], 512)},
		{"frames", "o", split(yes, 32<<10)},
		{"chunked", "o", []string{strings.Repeat("é", 100<<10)}},
		{"lines longer than a batch", "i", []string{strings.Repeat("\x00", 64<<10), "\x00", strings.Repeat("\x00", 20<<10)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			s := Session{ID: "lines", Kind: session.KindExec, Command: []string{"sh"}}
			r, err := newWriter(Config{Dir: t.TempDir(), FailClosed: true}, s, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Add("r", []byte("100x30"))
			for _, c := range tc.chunks {
				r.Add(tc.kind, []byte(c))
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if r.q.queued != 0 {
				t.Errorf("%d bytes of room not given back", r.q.queued)
			}
			file, err := os.ReadFile(r.path)
			if err != nil {
				t.Fatal(err)
			}
			header, events := recordingtest.ReadCast(t, r.path)
			if header["width"] != 100.0 || header["height"] != 30.0 {
				t.Errorf("header's size %vx%v, want 100x30", header["width"], header["height"])
			}
			lines := strings.SplitAfter(string(file), "\n")
			if len(lines) != len(events)+2 || lines[len(lines)-1] != "" {
				t.Fatalf("%d lines for %d events", len(lines), len(events))
			}
			var data strings.Builder
			for i, ev := range events {
				at := time.Duration(math.Round(ev[0].(float64)*1e6)) * time.Microsecond
				kind, text := ev[1].(string), ev[2].(string)
				if want := string(appendEvent(nil, at, kind, []byte(text))); lines[i+1] != want {
					t.Fatalf("event %d: %.60q, want %.60q", i, lines[i+1], want)
				}
				if kind == tc.kind {
					data.WriteString(text)
				}
			}
			if want := strings.Join(tc.chunks, ""); data.String() != want {
				t.Errorf("%d bytes recorded, want the %d given", data.Len(), len(want))
			}
		})
	}
}

func split(s string, n int) []string {
	var out []string
	for len(s) > n {
		out, s = append(out, s[:n]), s[n:]
	}
	return append(out, s)
}

func TestEventData(t *testing.T) {
	for _, n := range []int{0, 1, minPooledData, minPooledData + 1, 512, 513, 4 << 10, recordingChunk - 1, recordingChunk} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			in := []byte(strings.Repeat("x", n))
			data, buf := newEventData(in)
			if string(data) != string(in) || (n > 0 && &data[0] == &in[0]) {
				t.Fatalf("not a copy of the %d bytes", n)
			}
			if (buf != nil) != (n > minPooledData) {
				t.Errorf("pooled: %v", buf != nil)
			}
			if buf != nil && (cap(data) > 2*n || cap(data) != cap(*buf)) {
				t.Errorf("a buffer of %d bytes for %d", cap(data), n)
			}
			if buf != nil && eventClass(cap(data)) != eventClass(n) {
				t.Errorf("a buffer of %d bytes goes back to class %d, not %d", cap(data), eventClass(cap(data)), eventClass(n))
			}
			ev := castEvent{data: data, buf: buf}
			ev.release()
			if ev.buf != nil || ev.data != nil && buf != nil {
				t.Error("released event still holds its buffer")
			}
		})
	}
	if c := eventClass(recordingChunk); c != eventClasses-1 {
		t.Errorf("recordingChunk in class %d of %d", c, eventClasses)
	}
}
