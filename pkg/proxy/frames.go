package proxy

import (
	"errors"
	"io"
	"sync"
)

// spdyFrameHeader is the length of a SPDY frame's header; its last 3 bytes are the body's length.
const spdyFrameHeader = 8

// frameBuffers hold a whole SPDY data frame as the translator writes them (up to 32 KiB of
// payload), with its header.
var frameBuffers = sync.Pool{New: func() any { b := make([]byte, 2*largeCopyBuffer); return &b }}

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
			c.body = int(c.head[5])<<16 | int(c.head[6])<<8 | int(c.head[7])
			c.headLen = 0
		}
	}
	return c.body == 0 && c.headLen == 0
}

// copyWholeFrames copies the translator's SPDY frames to the kubelet a whole frame (or a full
// buffer) at a time. spdystream writes each frame as three writes (two 4-byte header fields, then
// the data); relayed read by read, as they come through the relay's pipe, each would be a TLS
// record and a system call. The rest of a frame always follows at once, so waiting for it holds
// nothing back. Quiet, it reads into a small buffer.
func copyWholeFrames(dst io.Writer, src io.Reader) (int64, error) {
	var cut frameCutter
	var total int64
	var small [smallCopyBuffer]byte
	var large *[]byte
	defer func() {
		if large != nil {
			frameBuffers.Put(large)
		}
	}()
	buf, have := small[:], 0
	for {
		if have == len(buf) && large == nil { // a frame longer than the small buffer: take a large one
			large = frameBuffers.Get().(*[]byte)
			copy(*large, buf[:have])
			buf = *large
		}
		n, rerr := src.Read(buf[have:])
		whole := cut.follow(buf[have : have+n])
		have += n
		if have > 0 && (whole || rerr != nil || (have == len(buf) && large != nil)) {
			w, werr := dst.Write(buf[:have])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
			have = 0
			if large != nil {
				frameBuffers.Put(large)
				large, buf = nil, small[:]
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
