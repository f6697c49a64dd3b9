package wire

import (
	"io"
	"sync"
)

// FrameBufferSize holds a whole frame as the translator writes them (up to 32 KiB of payload, a
// copy buffer's worth), with its header.
const FrameBufferSize = 2 * (32 << 10)

// FrameBuffers hold a whole frame: FrameBufferSize bytes of capacity, empty.
var FrameBuffers = sync.Pool{New: func() any { b := make([]byte, 0, FrameBufferSize); return &b }}

// FrameWriter writes a byte stream of frames a whole frame at a time. spdystream writes each
// SPDY frame as three writes (two 4-byte header fields, then the data), and upstream's stream
// translator each WebSocket frame through a 4 KiB buffer, as two writes or more: written as they
// come, each would be a TLS record and a system call. The rest of a frame always follows at once,
// so holding its start holds nothing back. Not for concurrent use.
type FrameWriter struct {
	W   io.Writer
	Cut interface{ Follow([]byte) bool } // the protocol's frame cutter: spdy's or websocket's
	// held: the start of a frame, until its rest comes.
	held *[]byte
	// partial: the bytes written so far end inside a frame.
	partial bool
}

func (f *FrameWriter) Write(p []byte) error {
	whole := f.Cut.Follow(p)
	f.partial = !whole
	if f.held == nil && (whole || len(p) > FrameBufferSize) {
		_, err := f.W.Write(p)
		return err
	}
	if f.held != nil && len(*f.held)+len(p) > FrameBufferSize { // longer than a buffer: held no longer
		if err := f.flush(); err != nil {
			return err
		}
		_, err := f.W.Write(p)
		return err
	}
	if f.held == nil {
		f.held = FrameBuffers.Get().(*[]byte) // empty: flush empties what it puts back
	}
	*f.held = append(*f.held, p...)
	if whole {
		return f.flush()
	}
	return nil
}

// Partial tells whether the bytes written so far end inside a frame.
func (f *FrameWriter) Partial() bool { return f.partial }

func (f *FrameWriter) flush() error {
	b := f.held
	f.held = nil
	_, err := f.W.Write(*b)
	*b = (*b)[:0]
	FrameBuffers.Put(b)
	return err
}
