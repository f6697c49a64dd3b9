// Package spdyclient is exec-proxy's SPDY/3.1 client connection: the httpstream.Connection that
// client-go's remotecommand protocols run on, for the stream translator's connection to the
// kubelet. It replaces spdystream's Connection (with client-go's wrapper around it) there, which
// keeps a zlib writer at best compression (about 650 KiB) and six goroutines for every session.
// Here the frames are read with package spdy's parser (Frames), header blocks are written
// without a compressor (spdy.HeaderBlocks), one goroutine reads, and every buffer has a byte bound.
//
// spdystream's semantics are kept (the references in the comments are to its connection.go and
// stream.go, and to k8s.io/streaming's httpstream/spdy connection.go), except where a comment
// says otherwise.
package spdyclient

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/moby/spdystream"
	"github.com/moby/spdystream/spdy"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream"

	wirespdy "github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
)

const (
	// readBufferSize is the connection's read buffer, small: what comes this way is control frames
	// and the error stream (the translator's connection writes stdout and stderr to the client
	// itself), read from the translator's connection's own buffer.
	readBufferSize = 1 << 10
	// maxBuffered bounds what is kept of a stream's data until it is read. A stream at the bound
	// stops the reading of the connection until it is read (backpressure), as a spdystream frame
	// worker blocked on a stream's Read stops its queue and then the connection.
	maxBuffered = 32 << 10
	// maxStreams bounds the streams open at once: a remotecommand client opens at most five.
	maxStreams = 64
	// createStreamResponseTimeout is how long CreateStream waits for the SYN_REPLY (client-go's).
	createStreamResponseTimeout = 30 * time.Second
	// closeWriteTimeout is how long Close gives the writes it makes and any write under way (a
	// stdin frame to a container that does not read): a kubelet that stopped reading cannot hold
	// a session that is being ended.
	closeWriteTimeout = time.Second
)

// ErrClosed: the connection was closed, or its reading ended, before the operation.
var ErrClosed = errors.New("the SPDY connection is closed")

// errGoAway stops the reading at the kubelet's GOAWAY: spdystream's Serve reads no further.
var errGoAway = errors.New("the kubelet sent GOAWAY")

// Conn is a SPDY/3.1 client connection; streams are opened by this side only.
type Conn struct {
	conn net.Conn
	in   io.Reader // conn, after what the upgrade's response reader had buffered

	wmu    sync.Mutex // one whole frame at a time; taken before mu, never under it
	blocks wirespdy.HeaderBlocks
	pingID uint32 // the last PING sent (odd: a client's)

	mu       sync.Mutex
	cond     sync.Cond // on mu: a stream's buffer or state changed
	streams  map[spdy.StreamId]*Stream
	nextID   spdy.StreamId
	closing  bool      // Close began: no more streams
	closed   chan bool // closed when the reading ends (CloseChan)
	timers   timers
	readDone bool
}

// NewConn starts a client connection over conn, whose bytes come from in (conn, or what a
// response reader buffered before conn), writing a PING every pingPeriod (none when zero).
func NewConn(conn net.Conn, in io.Reader, pingPeriod time.Duration) *Conn {
	c := &Conn{conn: conn, in: in, streams: map[spdy.StreamId]*Stream{}, nextID: 1, closed: make(chan bool)}
	c.cond.L = &c.mu
	c.timers.start(c, pingPeriod)
	go c.serve()
	return c
}

// serve reads the connection until it ends.
func (c *Conn) serve() {
	buf := make([]byte, readBufferSize)
	frames := wirespdy.NewFrames(handler{c})
	var err error
	for err == nil {
		var n int
		n, err = c.in.Read(buf)
		if n > 0 {
			c.timers.active()
			if ferr := frames.Feed(buf[:n]); ferr != nil {
				err = ferr
			}
		}
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, errGoAway) {
		klog.V(3).InfoS("The SPDY connection's reading ended", "err", err)
	}
	c.readEnded()
}

// readEnded ends every stream, as spdystream's Serve does when its reading ends: reads return
// io.EOF, CreateStream waits no more. It closes the kubelet's connection at once: spdystream
// closes it once no stream is left, which its end of reading brings about.
func (c *Conn) readEnded() {
	c.mu.Lock()
	streams := c.streams
	c.streams, c.readDone = map[spdy.StreamId]*Stream{}, true
	c.mu.Unlock()
	for _, s := range streams {
		s.connEnded()
	}
	c.timers.stop()
	close(c.closed)
	_ = c.conn.Close()
}

// CreateStream opens a stream and waits for the kubelet's SYN_REPLY, as client-go's connection
// does (CreateStream and WaitTimeout): spdystream.ErrReset if the kubelet resets it first,
// spdystream.ErrTimeout after createStreamResponseTimeout.
func (c *Conn) CreateStream(headers http.Header) (httpstream.Stream, error) {
	s, err := c.open(headers)
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(createStreamResponseTimeout)
	defer timer.Stop()
	select {
	case <-s.replied:
	case <-timer.C:
		return nil, spdystream.ErrTimeout
	}
	if err := s.replyError(); err != nil {
		return nil, err
	}
	s.register(true)
	return s, nil
}

// open writes the SYN_STREAM of a new stream. Ids rise in the order the frames are written.
func (c *Conn) open(headers http.Header) (*Stream, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	id := c.nextID
	switch {
	case c.closing || c.readDone:
		c.mu.Unlock()
		return nil, ErrClosed
	case len(c.streams) >= maxStreams:
		c.mu.Unlock()
		return nil, fmt.Errorf("more than %d SPDY streams open at once", maxStreams)
	case id > 0x7fffffff:
		c.mu.Unlock()
		return nil, errors.New("no SPDY stream ids left")
	}
	c.nextID += 2
	s := newStream(c, id, headers)
	c.streams[id] = s
	c.mu.Unlock()
	return s, c.writeLocked(wirespdy.AppendSynStream(nil, &c.blocks, id, 0, headers))
}

// stream is the open stream id, or nil.
func (c *Conn) stream(id spdy.StreamId) *Stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[id]
}

// remove forgets s: its frames from now on are dropped.
func (c *Conn) remove(s *Stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streams[s.id] == s {
		delete(c.streams, s.id)
	}
}

// RemoveStreams takes streams out of those Close resets (client-go's connection).
func (c *Conn) RemoveStreams(streams ...httpstream.Stream) {
	for _, st := range streams {
		if s, ok := st.(*Stream); ok && s != nil {
			s.register(false)
		}
	}
}

// Close resets the streams CreateStream gave and RemoveStreams did not take back (client-go's
// connection.Close), writes a GOAWAY (spdystream's Close), and closes the kubelet's connection.
// spdystream closes it only once no stream is left: with client-go's close timeout of zero, that
// may be never, for a stream neither side ended.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	c.cond.Broadcast() // a reading that waits for a full stream's reader drops its data and goes on
	// Before any write: one under way may be blocked by a kubelet that does not read, holding
	// the write lock every frame below needs.
	_ = c.conn.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
	var reset []*Stream
	for _, s := range c.streams {
		reset = append(reset, s)
	}
	c.mu.Unlock()
	for _, s := range reset {
		if s.isRegistered() {
			_ = s.Reset()
		}
	}
	// The last stream the kubelet opened that was taken: none ever is (see handler.synStream).
	err := c.write(wirespdy.AppendGoAway(nil, 0, spdy.GoAwayOK))
	c.timers.stop()
	if cerr := c.conn.Close(); err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}

// abort ends the connection from its reading: the kubelet broke a bound. The reading then ends
// as at the connection's end, and client-go's streams with it.
func (c *Conn) abort(err error) {
	klog.V(2).InfoS("Closing the connection to the kubelet", "reason", err)
	_ = c.conn.Close()
}

// CloseChan is closed when the connection's reading ends (spdystream's).
func (c *Conn) CloseChan() <-chan bool { return c.closed }

// SetIdleTimeout closes the connection after timeout without a frame read or written (zero: never).
func (c *Conn) SetIdleTimeout(timeout time.Duration) { c.timers.setIdle(c, timeout) }

// write writes one whole frame.
func (c *Conn) write(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(frame)
}

func (c *Conn) writeLocked(frame []byte) error {
	c.timers.active()
	if _, err := c.conn.Write(frame); err != nil {
		return fmt.Errorf("writing a SPDY frame to the kubelet: %w", err)
	}
	return nil
}

// writeData writes a DATA frame of p, in one write when it is small.
func (c *Conn) writeData(id spdy.StreamId, fin bool, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(p) <= 4<<10 {
		return c.writeLocked(append(wirespdy.AppendDataHeader(make([]byte, 0, wirespdy.FrameHeaderLen+len(p)), id, fin, len(p)), p...))
	}
	if err := c.writeLocked(wirespdy.AppendDataHeader(nil, id, fin, len(p))); err != nil {
		return err
	}
	return c.writeLocked(p)
}

// ping writes the next PING (spdystream's Ping, without waiting for the answer: client-go only
// logs a failed ping).
func (c *Conn) ping() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.pingID == 0 || c.pingID >= 0x7ffffffd {
		c.pingID = 1
	} else {
		c.pingID += 2
	}
	return c.writeLocked(wirespdy.AppendPing(nil, c.pingID))
}
