package proxy

import (
	"io"
	"sync"
)

// spdyFrameHeader is the length of a SPDY frame's header; its last 3 bytes are the body's length.
const spdyFrameHeader = 8

// frameBuffers hold a whole frame as the translator writes them (up to 32 KiB of payload), with
// its header.
var frameBuffers = sync.Pool{New: func() any { b := make([]byte, 0, frameBufferSize); return &b }}

const frameBufferSize = 2 * largeCopyBuffer

// frameCutter follows the frame boundaries of a SPDY byte stream.
type frameCutter struct {
	head    [spdyFrameHeader]byte
	headLen int // bytes of the current frame's header seen
	body    int // bytes of the current frame's body still to come
}

// follow reads p as the stream's next bytes; it tells whether they end on a frame boundary.
func (c *frameCutter) follow(p []byte) bool {
	for len(p) > 0 {
		if c.body > 0 {
			n := min(c.body, len(p))
			c.body -= n
			p = p[n:]
			continue
		}
		n := copy(c.head[c.headLen:], p)
		c.headLen += n
		p = p[n:]
		if c.headLen == spdyFrameHeader {
			c.body = c.bodyLen()
			c.headLen = 0
		}
	}
	return c.body == 0 && c.headLen == 0
}

// headerOnly tells whether the bytes followed end in a frame's header, or right after it before
// any of its body.
func (c *frameCutter) headerOnly() bool {
	return c.headLen > 0 || (c.body > 0 && c.body == c.bodyLen())
}

// bodyLen is the body length of the frame whose header was seen last.
func (c *frameCutter) bodyLen() int { return spdyBodyLen(c.head[:]) }

// spdyBodyLen is the body length a SPDY frame header h gives: its last 3 bytes.
func spdyBodyLen(h []byte) int { return int(h[5])<<16 | int(h[6])<<8 | int(h[7]) }

// wsFrameCutter follows the frame boundaries of a WebSocket byte stream.
type wsFrameCutter struct {
	head    [14]byte
	headLen int    // bytes of the current frame's header seen
	body    uint64 // bytes of the current frame's payload still to come
}

func (c *wsFrameCutter) follow(p []byte) bool {
	for len(p) > 0 {
		if c.body > 0 {
			n := min(c.body, uint64(len(p)))
			c.body -= n
			p = p[n:]
			continue
		}
		c.head[c.headLen] = p[0]
		c.headLen++
		p = p[1:]
		if c.headLen >= 2 && c.headLen == wsHeaderLen(c.head[1]) {
			c.body, _ = wsPayloadLen(c.head[:c.headLen])
			c.headLen = 0
		}
	}
	return c.body == 0 && c.headLen == 0
}

// frameWriter writes a byte stream of frames a whole frame at a time. spdystream writes each
// SPDY frame as three writes (two 4-byte header fields, then the data), and upstream's stream
// translator each WebSocket frame through a 4 KiB buffer, as two writes or more: written as they
// come, each would be a TLS record and a system call. The rest of a frame always follows at once,
// so holding its start holds nothing back. Not for concurrent use.
type frameWriter struct {
	w    io.Writer
	cut  interface{ follow([]byte) bool } // *frameCutter or *wsFrameCutter
	held *[]byte                          // the start of a frame, until its rest comes
	// partial: the bytes written so far end inside a frame.
	partial bool
}

func (f *frameWriter) Write(p []byte) error {
	whole := f.cut.follow(p)
	f.partial = !whole
	if f.held == nil && (whole || len(p) > frameBufferSize) {
		_, err := f.w.Write(p)
		return err
	}
	if f.held != nil && len(*f.held)+len(p) > frameBufferSize { // longer than a buffer: held no longer
		if err := f.flush(); err != nil {
			return err
		}
		_, err := f.w.Write(p)
		return err
	}
	if f.held == nil {
		f.held = frameBuffers.Get().(*[]byte) // empty: flush empties what it puts back
	}
	*f.held = append(*f.held, p...)
	if whole {
		return f.flush()
	}
	return nil
}

func (f *frameWriter) flush() error {
	b := f.held
	f.held = nil
	_, err := f.w.Write(*b)
	*b = (*b)[:0]
	frameBuffers.Put(b)
	return err
}
