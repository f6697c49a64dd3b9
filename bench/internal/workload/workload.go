// Package workload is what the bench's parts run in the container and count at the client.
package workload

import (
	"bytes"
	"fmt"
	"sync/atomic"
)

// Counter counts the bytes written to it.
type Counter struct{ n atomic.Int64 }

func (c *Counter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

// Bytes is how many bytes were written so far.
func (c *Counter) Bytes() int64 { return c.n.Load() }

// StreamCommand writes n bytes (a multiple of 64 KiB) of printable text, so that a recording
// stores about as much as was sent, in 64 KiB writes: busybox's head and yes alone write in small
// pieces and would measure the container, not the path.
func StreamCommand(n int64) []string {
	return []string{"sh", "-c", fmt.Sprintf(`yes "$(head -c 16383 /dev/zero | tr '\0' a)" | dd bs=65536 count=%d iflag=fullblock 2>/dev/null`, n/65536)}
}

// StreamUntilStdinCloses writes StreamCommand's text in pieces of chunk bytes (a multiple of
// 64 KiB) until its stdin ends, then ends itself once the piece under way is written: a bulk
// transfer that stops cleanly, with no process left behind in the container, whether or not the
// runtime kills what an ended exec session started.
func StreamUntilStdinCloses(chunk int64) []string {
	return []string{"sh", "-c", `stop=/tmp/stream-until-stdin-closes.$$; rm -f "$stop"
(while [ ! -e "$stop" ]; do ` + StreamCommand(chunk)[2] + `; done; rm -f "$stop") &
cat >/dev/null; touch "$stop"; wait`}
}

// textLine is one line of Text: what StreamCommand's yes writes too.
var textLine = append(bytes.Repeat([]byte("a"), 16383), '\n')

// Text reads as an endless run of textLine, the upload's input.
type Text struct{ off int }

func (t *Text) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], textLine[t.off:])
		n += c
		t.off = (t.off + c) % len(textLine)
	}
	return n, nil
}
