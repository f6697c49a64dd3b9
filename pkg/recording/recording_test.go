package recording

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

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
