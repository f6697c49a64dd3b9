// Package tlsrecord batches TLS records. Go's crypto/tls writes each TLS record with a system call
// of its own: a 32 KiB write is two or three records, and a WebSocket frame from upstream's stream
// translator (whose header and first 4 KiB come through a 4 KiB buffer) four or five. A Conn under
// a session's TLS connection gathers the records of one write, so that they leave in one system
// call.
package tlsrecord

import (
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
)

// recordBufferSize holds the records of the largest write exec-proxy makes, a whole frame's.
const recordBufferSize = wire.FrameBufferSize + 1<<10

var recordBuffers = sync.Pool{New: func() any { b := make([]byte, 0, recordBufferSize); return &b }}

// Conn is the TCP connection under a TLS connection. While Write (the package's) runs, what the
// TLS connection writes is gathered, then written at once.
type Conn struct {
	net.Conn
	writing sync.Mutex // one write of gathered records at a time
	mu      sync.Mutex
	held    *[]byte // the records of the write under way
	// err is the failed write of gathered records: the TLS connection lost records it counts as
	// sent, so nothing more may follow them.
	err error
}

func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.held != nil {
		*c.held = append(*c.held, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// writeRecords writes p through tc, the TLS connection over c.
func (c *Conn) writeRecords(tc *tls.Conn, p []byte) (int, error) {
	c.writing.Lock()
	defer c.writing.Unlock()
	held := recordBuffers.Get().(*[]byte)
	defer func() {
		*held = (*held)[:0]
		recordBuffers.Put(held)
	}()
	c.mu.Lock()
	c.held = held
	c.mu.Unlock()
	n, err := tc.Write(p)
	c.mu.Lock()
	c.held = nil
	failed := c.err
	c.mu.Unlock()
	if failed != nil {
		return 0, failed
	}
	if len(*held) > 0 {
		if _, werr := c.Conn.Write(*held); werr != nil {
			c.mu.Lock()
			c.err = werr
			c.mu.Unlock()
			return 0, werr
		}
	}
	return n, err
}

// Write writes p to c, its TLS records in one system call if c is TLS over a Conn.
func Write(c net.Conn, p []byte) (int, error) {
	if tc, ok := c.(*tls.Conn); ok {
		if rc, ok := tc.NetConn().(*Conn); ok {
			return rc.writeRecords(tc, p)
		}
	}
	return c.Write(p)
}

// Writer writes to Conn with Write.
type Writer struct{ Conn net.Conn }

func (w Writer) Write(p []byte) (int, error) { return Write(w.Conn, p) }

// Listener puts a Conn under each connection exec-proxy serves; the TLS is over it.
type Listener struct{ net.Listener }

// keepAlivePeriod is the API server's own: it sets it on a TCP connection it accepts, which a
// Conn is not.
const keepAlivePeriod = 3 * time.Minute

func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetKeepAlive(true)
		_ = tc.SetKeepAlivePeriod(keepAlivePeriod)
	}
	return &Conn{Conn: c}, nil
}
