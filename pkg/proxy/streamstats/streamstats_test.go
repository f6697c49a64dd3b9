package streamstats

import (
	"testing"

	"k8s.io/client-go/tools/remotecommand"

	"github.com/exec-proxy/exec-proxy/pkg/recording/recordingtest"
)

// What the frame reader hears reaches the recording as asciicast events: stdout and stderr as
// output, stdin as input, each terminal size as a resize.
func TestStatsRecord(t *testing.T) {
	stats := New(Hooks{})
	rec := &recordingtest.Sink{RecordStdin: true}
	stats.StartRecording(rec)
	for _, stream := range []string{"stdout", "stderr", "stdin", "data"} {
		if want := stream != "data"; stats.Wants(stream) != want {
			t.Errorf("wants %s: %t, want %t", stream, !want, want)
		}
		stats.Payload(stream, 2)
		stats.Data(stream, []byte("ab"))
	}
	stats.Resized([]remotecommand.TerminalSize{{Width: 80, Height: 24}})
	got := map[string]string{}
	for _, ev := range rec.Events() {
		got[ev.Kind] += ev.Data
	}
	if got["o"] != "abab" || got["i"] != "ab" || got["r"] != "80x24" {
		t.Errorf("recorded %q", got)
	}
	if bytes, resizes, _ := stats.Result(); len(bytes) != 4 || resizes != 1 {
		t.Errorf("bytes %v, %d resizes", bytes, resizes)
	}
}
