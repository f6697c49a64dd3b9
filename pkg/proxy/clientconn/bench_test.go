package clientconn

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkCopyAdaptive copies bulk reads as the relay does between the two connections.
func BenchmarkCopyAdaptive(b *testing.B) {
	const chunk = 32 << 10
	src := &repeatReader{n: chunk, data: bytes.Repeat([]byte("y"), chunk)}
	b.SetBytes(chunk * 64)
	b.ReportAllocs()
	for b.Loop() {
		src.left = 64
		if _, err := copyAdaptive(io.Discard, src); err != nil {
			b.Fatal(err)
		}
	}
}

// repeatReader returns left reads of n bytes of data (as far as p holds them), then EOF.
type repeatReader struct {
	n, left int
	data    []byte
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	r.left--
	return copy(p, r.data[:r.n]), nil
}
