package spdy

// FrameHeaderLen is the length of a SPDY frame's header; its last 3 bytes are the body's length.
const FrameHeaderLen = 8

// FrameCutter follows the frame boundaries of a SPDY byte stream.
type FrameCutter struct {
	head    [FrameHeaderLen]byte
	headLen int // bytes of the current frame's header seen
	body    int // bytes of the current frame's body still to come
}

// Follow reads p as the stream's next bytes; it tells whether they end on a frame boundary.
func (c *FrameCutter) Follow(p []byte) bool {
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
		if c.headLen == FrameHeaderLen {
			c.body = c.bodyLen()
			c.headLen = 0
		}
	}
	return c.body == 0 && c.headLen == 0
}

// HeaderOnly tells whether the bytes followed end in a frame's header, or right after it before
// any of its body.
func (c *FrameCutter) HeaderOnly() bool {
	return c.headLen > 0 || (c.body > 0 && c.body == c.bodyLen())
}

// bodyLen is the body length of the frame whose header was seen last.
func (c *FrameCutter) bodyLen() int { return BodyLen(c.head[:]) }

// BodyLen is the body length a SPDY frame header h gives: its last 3 bytes.
func BodyLen(h []byte) int { return int(h[5])<<16 | int(h[6])<<8 | int(h[7]) }
