package wire

import (
	"net"
	"time"
)

// longAgo is a read deadline already past: a read then returns only what has already arrived.
var longAgo = time.Unix(1, 0)

// ReadMore adds to the n bytes read into p what the connection has already received, without
// waiting. A tls.Conn returns one TLS record per Read, and SPDY clients write each frame's 8-byte
// header as records of their own (spdystream writes its fields one by one); relayed read by read,
// each tiny record would cost a write system call here and a record in the kubelet. A connection
// whose deadline cannot be set is read as it comes.
func ReadMore(c net.Conn, p []byte, n int) int {
	if n == 0 || n == len(p) || c.SetReadDeadline(longAgo) != nil {
		return n
	}
	for n < len(p) {
		m, err := c.Read(p[n:])
		n += m
		if err != nil {
			// A timeout says nothing more has arrived; any other error stays with the connection
			// (tls.Conn keeps it) and ends the next read.
			break
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	return n
}
