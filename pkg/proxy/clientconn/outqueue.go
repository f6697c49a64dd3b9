package clientconn

import (
	"errors"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/exec-proxy/exec-proxy/pkg/wire/tlsrecord"
)

// outQueueChunks bounds what a bandwidth-limited session holds for its client: this many chunks of
// at most LimiterBurst bytes (256 KiB). Beyond that, TCP holds the kubelet back: what it has not
// sent stays in its kernel, which keep-alives no longer reset away (see package holdback).
const outQueueChunks = 8

// outQueueDelay bounds, at the limit, how long what is queued waits. Control frames wait in the
// same queue: a WebSocket client's pong waits behind the output, and client-go gives a session up
// when none comes for 61 s.
const outQueueDelay = 10 * time.Second

// outQueueLen is the chunks a session limited to bytesPerSec may queue: outQueueDelay's worth at
// most, at least two, at most outQueueChunks.
func outQueueLen(bytesPerSec float64) int {
	return min(max(int(bytesPerSec*outQueueDelay.Seconds())/LimiterBurst, 2), outQueueChunks)
}

// flushGrace (a variable for tests) is added to the time the queued bytes take at the limit when a session ends: a client
// that does not read by then is not waited for.
var flushGrace = 10 * time.Second

var errOutQueueClosed = errors.New("session connection closed")

// outQueue sends a bandwidth-limited session's bytes to its client at the limit, from a goroutine,
// so that a write is not held for the limit's sake. Beyond outQueueLen chunks, write waits:
// memory and the wait stay bounded, and reading from the kubelet waits with it.
type outQueue struct {
	c      *Conn
	limit  *rate.Limiter
	chunks chan []byte
	mu     sync.Mutex // guards closed against sends on a closed channel
	closed bool
	// closing lets a write waiting on a full queue (holding mu) go, so that finish gets mu.
	closing     chan struct{}
	closingOnce sync.Once
	done        chan struct{}
	err         error // the first write error, read after done
	failed      chan struct{}
	once        sync.Once
}

func newOutQueue(c *Conn, limit *rate.Limiter, chunks int) *outQueue {
	q := &outQueue{c: c, limit: limit, chunks: make(chan []byte, chunks), done: make(chan struct{}), failed: make(chan struct{}),
		closing: make(chan struct{})}
	go q.run()
	return q
}

// write queues a copy of p; it waits while the queue is full.
func (q *outQueue) write(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, errOutQueueClosed
	}
	for off := 0; off < len(p); off += LimiterBurst {
		chunk := append([]byte(nil), p[off:min(off+LimiterBurst, len(p))]...)
		select {
		case q.chunks <- chunk:
		case <-q.failed:
			return off, q.err
		case <-q.c.s.Context().Done():
			return off, q.c.s.Context().Err()
		case <-q.closing:
			return off, errOutQueueClosed
		}
	}
	return len(p), nil
}

func (q *outQueue) run() {
	defer close(q.done)
	for chunk := range q.chunks {
		if err := q.send(chunk); err != nil {
			q.err = err
			q.once.Do(func() { close(q.failed) })
			for range q.chunks { // the client is gone: drop the rest
			}
			return
		}
	}
}

func (q *outQueue) send(chunk []byte) error {
	if err := wait(q.c.s.Context(), q.limit, len(chunk)); err != nil {
		return err
	}
	n, err := tlsrecord.Write(q.c.Conn, chunk)
	q.c.s.CountOut(n)
	return err
}

// finish takes no more bytes and waits until the queued ones reached the client, for as long as
// they take at the limit and flushGrace more; then the connection is closed under the writer.
func (q *outQueue) finish() {
	q.closingOnce.Do(func() { close(q.closing) })
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.chunks)
	}
	queued := len(q.chunks) * LimiterBurst
	q.mu.Unlock()
	limit := float64(q.limit.Limit())
	timer := time.NewTimer(time.Duration(float64(queued)/limit*float64(time.Second)) + flushGrace)
	defer timer.Stop()
	select {
	case <-q.done:
	case <-timer.C:
		_ = q.c.Conn.Close()
		<-q.done
	}
}
