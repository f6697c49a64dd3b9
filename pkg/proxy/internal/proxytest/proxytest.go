// Package proxytest has what the tests of a session's client and kubelet sides share: a fake
// session, as a client connection sees it, and connections that keep what is written to them.
package proxytest

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/exec-proxy/exec-proxy/pkg/proxy/clientconn"
	"github.com/exec-proxy/exec-proxy/pkg/wire"
)

// Session is a session as its client connection sees it: it counts and remembers, and takes any
// 101 it is answered.
type Session struct {
	Reader  wire.FrameReader // Nop unless set
	in, out atomic.Int64
	ctx     context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex
	conn    *clientconn.Conn
	refused int
}

var _ clientconn.Session = (*Session)(nil)

// NewSession is a Session whose context ends with t.
func NewSession(t testing.TB) *Session {
	s := &Session{Reader: wire.Nop{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	t.Cleanup(s.cancel)
	return s
}

func (s *Session) Context() context.Context      { return s.ctx }
func (s *Session) Cancel()                       { s.cancel() }
func (s *Session) CountIn(n int)                 { s.in.Add(int64(n)) }
func (s *Session) CountOut(n int)                { s.out.Add(int64(n)) }
func (s *Session) FrameReader() wire.FrameReader { return s.Reader }
func (s *Session) ProtocolError() bool           { return false }
func (s *Session) ExitStatusTold() bool          { return false }
func (s *Session) ClientClosed()                 {}
func (s *Session) KubeletRefusal([]byte) error   { return nil }

func (s *Session) Refused(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused = code
}

func (s *Session) Attach(c *clientconn.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn = c
}

func (s *Session) Answered(head []byte) (int, bool, error) {
	code, _, upgrade := clientconn.ParseResponseHead(head)
	return code, upgrade == "websocket", nil
}

// BytesOut is what the client connection counted out.
func (s *Session) BytesOut() int64 { return s.out.Load() }

// WSHead is a WebSocket 101, as the translator answers a v5 client.
const WSHead = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n"

// SizesConn is a connection that records the size of each write, and what was written.
type SizesConn struct {
	net.Conn
	Sizes []int
	All   bytes.Buffer
}

func (c *SizesConn) Write(p []byte) (int, error) {
	c.Sizes = append(c.Sizes, len(p))
	return c.All.Write(p)
}

func (c *SizesConn) Close() error                     { return nil }
func (c *SizesConn) SetDeadline(time.Time) error      { return nil }
func (c *SizesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *SizesConn) SetWriteDeadline(time.Time) error { return nil }

// DeadlineConn is a SizesConn that records the deadlines set on it.
type DeadlineConn struct {
	SizesConn
	Deadlines []time.Time
}

func (c *DeadlineConn) SetDeadline(t time.Time) error {
	c.Deadlines = append(c.Deadlines, t)
	return nil
}

// ReadConn is a connection that reads R, then io.EOF.
type ReadConn struct {
	SizesConn
	R io.Reader
}

func (c *ReadConn) Read(p []byte) (int, error) { return c.R.Read(p) }

// LockedBuffer is a bytes.Buffer for one writer and a reader in another goroutine.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is what was written.
func (b *LockedBuffer) String() string { return string(b.Bytes()) }

// Bytes is a copy of what was written.
func (b *LockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.b.Bytes()...)
}
