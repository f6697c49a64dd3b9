package kubeletconn

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// lingeringConn keeps a failed write from ending a session before the kubelet's last bytes are
// relayed. Upstream's upgrade-aware proxy ends a session when either direction stops, and closes
// both connections. After the kubelet closes (the command ended), the client's next bytes (a
// flow-control window update, say) fail to reach it; were that failure returned at once, the
// client-bound direction would be cut while it still holds the end of the output and the exit
// status, which a bandwidth limit can keep waiting for a while. So once the upgrade succeeded
// (armed), a write error is returned only when reading has ended too, or the connection is closed.
// Before that, nothing reads concurrently and errors are returned as they come.
type lingeringConn struct {
	net.Conn
	armed     atomic.Bool
	bounded   atomic.Bool // a write deadline was set: the writer wants to be done by then
	readDone  chan struct{}
	readOnce  sync.Once
	closed    chan struct{}
	closeOnce sync.Once
}

func newLingeringConn(c net.Conn) *lingeringConn {
	return &lingeringConn{Conn: c, readDone: make(chan struct{}), closed: make(chan struct{})}
}

func (c *lingeringConn) arm() { c.armed.Store(true) }

func (c *lingeringConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) { // a deadline (wire.ReadMore's) ends no reading
		c.readOnce.Do(func() { close(c.readDone) })
	}
	return n, err
}

func (c *lingeringConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil && c.armed.Load() && !c.bounded.Load() {
		select {
		case <-c.readDone:
		case <-c.closed:
		}
	}
	return n, err
}

// SetWriteDeadline: tls.Conn.Close sets one before its close_notify, written on the way to closing
// this connection; waiting for the connection to close there would wait for itself.
func (c *lingeringConn) SetWriteDeadline(t time.Time) error {
	if !t.IsZero() {
		c.bounded.Store(true)
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *lingeringConn) SetDeadline(t time.Time) error {
	if !t.IsZero() {
		c.bounded.Store(true)
	}
	return c.Conn.SetDeadline(t)
}

func (c *lingeringConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
