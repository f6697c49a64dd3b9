package clientconn

import (
	"errors"
	"io"
	"sync"
)

// Buffers for the upgrade-aware proxy's copies. io.Copy gives each direction of each session its
// own 32 KiB buffer for the session's whole life, which an idle session mostly spends blocked in
// Read. Conn implements io.ReaderFrom and io.WriterTo so that io.Copy uses these instead: a
// small buffer while the connection is quiet, a pooled large one while data flows. The small one
// holds keystrokes, window updates and a prompt's line; a burst's first read fills it, and costs one
// small write before the large buffer takes over.
const (
	smallCopyBuffer = 256
	largeCopyBuffer = 32 << 10
)

var (
	smallBuffers = sync.Pool{New: func() any { b := make([]byte, smallCopyBuffer); return &b }}
	largeBuffers = sync.Pool{New: func() any { b := make([]byte, largeCopyBuffer); return &b }}
)

// copyBuffers hands out a buffer for the next read: the large one after a read of at least the
// small one's size, back to the small one (and the large one back to the pool) after a read of less:
// bulk data keeps large writes (a TLS record each), keystrokes and idle connections hold the small one.
type copyBuffers struct {
	small, large *[]byte
}

func (b *copyBuffers) next(lastFilled bool) []byte {
	switch {
	case lastFilled && b.large == nil:
		b.large = largeBuffers.Get().(*[]byte)
	case !lastFilled && b.large != nil:
		largeBuffers.Put(b.large)
		b.large = nil
	}
	if b.large != nil {
		return *b.large
	}
	if b.small == nil {
		b.small = smallBuffers.Get().(*[]byte)
	}
	return *b.small
}

func (b *copyBuffers) release() {
	if b.large != nil {
		largeBuffers.Put(b.large)
	}
	if b.small != nil {
		smallBuffers.Put(b.small)
	}
}

// copyAdaptive is io.Copy with copyBuffers.
func copyAdaptive(dst io.Writer, src io.Reader) (int64, error) {
	var bufs copyBuffers
	defer bufs.release()
	var total int64
	filled := false
	for {
		buf := bufs.next(filled)
		n, rerr := src.Read(buf)
		filled = n >= smallCopyBuffer
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
			if w < n {
				return total, io.ErrShortWrite
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return total, nil
			}
			return total, rerr
		}
	}
}

// ReadFrom is the backend-to-client copy of the upgrade-aware proxy.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) { return copyAdaptive(c, r) }

// WriteTo is the client-to-backend copy of the upgrade-aware proxy.
func (c *Conn) WriteTo(w io.Writer) (int64, error) { return copyAdaptive(w, c) }
