package websocket

import "encoding/binary"

// FrameCutter follows the frame boundaries of a WebSocket byte stream.
type FrameCutter struct {
	head    [14]byte
	headLen int    // bytes of the current frame's header seen
	body    uint64 // bytes of the current frame's payload still to come
}

// Follow reads p as the stream's next bytes; it tells whether they end on a frame boundary.
func (c *FrameCutter) Follow(p []byte) bool {
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
		if c.headLen >= 2 && c.headLen == HeaderLen(c.head[1]) {
			c.body, _ = PayloadLen(c.head[:c.headLen])
			c.headLen = 0
		}
	}
	return c.body == 0 && c.headLen == 0
}

// HeaderLen is the length of a WebSocket frame header whose second byte is second.
func HeaderLen(second byte) int {
	n := 2
	switch second & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if second&0x80 != 0 {
		n += 4
	}
	return n
}

// PayloadLen reads a whole WebSocket frame header: the payload's length, and where the masking
// key (if any) starts. A 64-bit length's top bit is dropped, as x/net/websocket drops it.
func PayloadLen(h []byte) (length uint64, off int) {
	switch l := h[1] & 0x7f; l {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:4])), 4
	case 127:
		return binary.BigEndian.Uint64(h[2:10]) &^ (1 << 63), 10
	default:
		return uint64(l), 2
	}
}

// MaxHeader is the longest header of a frame exec-proxy writes: unmasked, with a 64-bit length.
const MaxHeader = 10

// ChannelFrame puts a binary WebSocket frame's header and channel byte ch before the n bytes of
// payload at b[MaxHeader+1:], and returns the frame: what x/net/websocket writes, unmasked.
func ChannelFrame(b []byte, ch byte, n int) []byte {
	b[MaxHeader] = ch
	size := n + 1
	var start int
	switch {
	case size <= 125:
		start = MaxHeader - 2
		b[start+1] = byte(size)
	case size <= 0xffff:
		start = MaxHeader - 4
		b[start+1] = 126
		binary.BigEndian.PutUint16(b[start+2:], uint16(size))
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(size))
	}
	b[start] = 0x82 // FIN, binary
	return b[start : MaxHeader+1+n]
}

// Unmask unmasks p, a client frame's payload from position pos on, with the frame's key.
func Unmask(p []byte, key [4]byte, pos int) {
	var k [8]byte
	for i := range k {
		k[i] = key[(pos+i)%4]
	}
	k64 := binary.NativeEndian.Uint64(k[:])
	for len(p) >= 8 {
		binary.NativeEndian.PutUint64(p, binary.NativeEndian.Uint64(p)^k64)
		p = p[8:]
	}
	for i := range p {
		p[i] ^= k[i]
	}
}

// ClientFrame is a binary WebSocket frame on channel ch carrying data, as a client writes it:
// masked with key.
func ClientFrame(ch byte, data []byte, key [4]byte) []byte {
	size := len(data) + 1
	var f []byte
	switch {
	case size <= 125:
		f = append(make([]byte, 0, 6+size), 0x82, 0x80|byte(size))
	case size <= 0xffff:
		f = append(make([]byte, 0, 8+size), 0x82, 0x80|126, byte(size>>8), byte(size))
	default:
		f = append(make([]byte, 0, 14+size), 0x82, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(size))
	}
	f = append(f, key[:]...)
	start := len(f)
	f = append(append(f, ch), data...)
	Unmask(f[start:], key, 0) // masking is unmasking
	return f
}
