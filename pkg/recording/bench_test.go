package recording

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkWriter is a recording's cost per byte of a session's data, written to a file that
// discards it: printable output, and input of NUL bytes (what an upload of zeros records: each is
// six bytes of JSON).
func BenchmarkWriter(b *testing.B) {
	for _, c := range []struct {
		name string
		kind string
		data []byte
	}{
		{"printable-output", "o", bytes.Repeat([]byte("a"), 32<<10)},
		{"nul-input", "i", make([]byte, 32<<10)},
		{"binary-input", "i", binaryChunk(32 << 10)},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := Config{Dir: b.TempDir(), FailClosed: true, Create: func(string) (io.WriteCloser, error) { return nopCloser{io.Discard}, nil }}
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
