package recording

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkWriter is a recording's cost per byte of a session's data, written to a file that
// discards it: printable output, and input of NUL bytes (what an upload of zeros records: each is
// six bytes of JSON). The lines cases are issue 28's download (yes of 16 KiB lines), in the SPDY
// reader's largest chunk and in dd's 512-byte blocks. Run with -cpu 1 for the whole CPU per byte:
// with more, the relay's Add and the writer's goroutine overlap and ns/op is the slower one's.
func BenchmarkWriter(b *testing.B) {
	line := append(bytes.Repeat([]byte("a"), 16<<10-1), '\n')
	lines := bytes.Repeat(line, 3)
	for _, c := range []struct {
		name string
		kind string
		data []byte
		file bool // a file in the test's directory, not one that discards what it is given
	}{
		{"printable-output", "o", bytes.Repeat([]byte("a"), 32<<10), false},
		{"nul-input", "i", make([]byte, 32<<10), false},
		{"binary-input", "i", binaryChunk(32 << 10), false},
		{"lines-output", "o", lines[100 : 100+32<<10], false},
		{"lines-output-512B", "o", lines[100 : 100+512], false},
		{"lines-output-file", "o", lines[100 : 100+32<<10], true},
		{"lines-output-512B-file", "o", lines[100 : 100+512], true},
		// A coloured listing: an escape sequence every 10 to 30 bytes, what ls --color, prompts
		// and full-screen programs write.
		{"coloured-output", "o", bytes.Repeat([]byte("\x1b[01;34mdirectory\x1b[0m  file.txt  \x1b[01;32mrun.sh\x1b[0m\r\n"), 700)[:32<<10], false},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := Config{Dir: b.TempDir(), FailClosed: true}
			if !c.file {
				cfg.Create = func(string) (io.WriteCloser, error) { return nopCloser{io.Discard}, nil }
			}
			w, err := newWriter(cfg, Session{ID: "bench"}, true, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			for b.Loop() {
				w.Add(c.kind, c.data)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

func binaryChunk(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i * 131)
	}
	return p
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
