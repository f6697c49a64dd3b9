package workload

import (
	"bytes"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// StreamUntilStdinCloses writes whole pieces, and ends by itself once its stdin ends.
func TestStreamUntilStdinCloses(t *testing.T) {
	const chunk = 1 << 20
	for _, c := range []struct {
		name    string
		atLeast int64 // bytes read before stdin is closed
	}{{"stdin closed at once", 0}, {"stdin closed while it streams", 3 * chunk}} {
		t.Run(c.name, func(t *testing.T) {
			argv := StreamUntilStdinCloses(chunk)
			cmd := exec.Command(argv[0], argv[1:]...)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			n, err := io.CopyN(io.Discard, stdout, c.atLeast)
			if err != nil {
				t.Fatal(err)
			}
			stdin.Close()
			var out Counter
			if _, err := io.Copy(&out, stdout); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("%v: %s", err, stderr.String())
			}
			if total := n + out.Bytes(); total%chunk != 0 || total < c.atLeast {
				t.Errorf("%d bytes, want whole pieces of %d, at least %d", total, chunk, c.atLeast)
			}
			if strings.TrimSpace(stderr.String()) != "" {
				t.Errorf("stderr %q", stderr.String())
			}
		})
	}
}

// Text reads as StreamCommand's output does: lines of 16,383 letters, whatever the reads' sizes.
func TestText(t *testing.T) {
	for _, size := range []int{1, 7, 16384, 65536, 100000} {
		var got []byte
		var r Text
		buf := make([]byte, size)
		for len(got) < 3*16384 {
			n, err := r.Read(buf)
			if err != nil || n != size {
				t.Fatalf("read %d: %d, %v", size, n, err)
			}
			got = append(got, buf[:n]...)
		}
		want := bytes.Repeat(append(bytes.Repeat([]byte("a"), 16383), '\n'), 3)
		if !bytes.Equal(got[:len(want)], want) {
			t.Fatalf("reads of %d: not lines of 16383 letters", size)
		}
	}
}
