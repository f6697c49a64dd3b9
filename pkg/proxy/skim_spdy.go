package proxy

import (
	"encoding/json"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/spdystream/spdy"
)

// spdyQueue bounds the chunks waiting for a direction's frame reader; the relay waits when it is full.
const spdyQueue = 256

// spdySkimmer reads SPDY/3.1 frames in both directions with spdystream's framer, each direction
// on its own goroutine fed with copies: SYN_STREAM headers name each stream's type, DATA frames
// count per stream, and the error stream carries the Status with the exit code.
type spdySkimmer struct {
	stats *streamStats

	mu    sync.Mutex
	types map[spdy.StreamId]string
	msgs  map[spdy.StreamId][]byte

	client, server *chunkReader
	wg             sync.WaitGroup
}

func newSPDYSkimmer(stats *streamStats) *spdySkimmer {
	s := &spdySkimmer{stats: stats, types: map[spdy.StreamId]string{}, msgs: map[spdy.StreamId][]byte{},
		client: newChunkReader(), server: newChunkReader()}
	s.wg.Add(2)
	go s.read(s.client)
	go s.read(s.server)
	return s
}

func (s *spdySkimmer) fromClient(p []byte) { s.offer(s.client, p) }
func (s *spdySkimmer) toClient(p []byte)   { s.offer(s.server, p) }

func (s *spdySkimmer) offer(r *chunkReader, p []byte) {
	if !r.offer(p) {
		s.stats.lost("the frame reader stopped")
	}
}

// settle waits, briefly, until the reader of what went to the client has handled all of it, so
// that what the client was told is known (the client closing after its exit status is no vanishing).
func (s *spdySkimmer) settle() {
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		s.server.mu.Lock()
		stopped := s.server.stopped
		s.server.mu.Unlock()
		if stopped || (s.server.idle.Load() && len(s.server.ch) == 0) {
			return
		}
	}
}

// close ends both readers and waits for them. An error stream the connection's close cut short of
// its FIN is read as it is.
func (s *spdySkimmer) close() {
	s.client.end()
	s.server.end()
	s.wg.Wait()
	for id, msg := range s.msgs {
		s.stats.status(msg)
		delete(s.msgs, id)
	}
}

func (s *spdySkimmer) read(r *chunkReader) {
	defer s.wg.Done()
	framer, err := spdy.NewFramer(io.Discard, r)
	if err != nil {
		s.stats.lost("no frame reader: " + err.Error())
		r.abandon()
		return
	}
	for {
		frame, err := framer.ReadFrame()
		if err != nil {
			if err != io.EOF {
				s.stats.lost("unreadable SPDY frames: " + err.Error())
			}
			r.abandon()
			return
		}
		s.frame(frame)
	}
}

func (s *spdySkimmer) frame(frame spdy.Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch f := frame.(type) {
	case *spdy.SynStreamFrame:
		s.types[f.StreamId] = f.Headers.Get("streamType")
		s.stats.port(f.Headers.Get("port"))
	case *spdy.DataFrame:
		switch typ := s.types[f.StreamId]; typ {
		case "error":
			if len(s.msgs[f.StreamId]) < maxErrorMessage {
				s.msgs[f.StreamId] = append(s.msgs[f.StreamId], f.Data...)
			}
			// The kubelet writes its Status in one piece and may close the connection without a FIN:
			// read it as soon as it is whole.
			if msg := s.msgs[f.StreamId]; len(msg) > 0 && (f.Flags&spdy.DataFlagFin != 0 || json.Valid(msg)) {
				s.stats.status(s.msgs[f.StreamId])
				delete(s.msgs, f.StreamId)
			}
		case "resize":
			s.stats.resized(f.Data)
		default:
			s.stats.add(typ, len(f.Data))
			s.stats.record(typ, f.Data)
		}
	}
}

// chunkReader is an io.Reader over copies of what crossed the connection. When the reader is behind
// by a full queue, offer waits for it (or for it to be gone): a reader given up would lose the exit
// code, and it only ever waits itself on a fail-closed recording.
type chunkReader struct {
	ch      chan []byte
	cur     []byte
	mu      sync.Mutex
	stopped bool        // ended, abandoned or overflowed: nothing more is queued
	idle    atomic.Bool // the reader has handled all it was given and waits for more
	gone    chan struct{}
	goneOne sync.Once
}

func newChunkReader() *chunkReader {
	return &chunkReader{ch: make(chan []byte, spdyQueue), gone: make(chan struct{})}
}

func (r *chunkReader) offer(p []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || len(p) == 0 {
		return !r.stopped || len(p) == 0
	}
	select {
	case r.ch <- append([]byte(nil), p...):
		return true
	case <-r.gone:
		r.stopped = true
		close(r.ch)
		return false
	}
}

// end says no more data will come; the reader sees EOF after what is queued.
func (r *chunkReader) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopped {
		r.stopped = true
		close(r.ch)
	}
}

// abandon is end from the reader's side, after it gave up: later offers are dropped.
func (r *chunkReader) abandon() {
	r.goneOne.Do(func() { close(r.gone) }) // first, so a waiting offer lets go of the lock
	r.end()
	for range r.ch { // let queued copies be collected
	}
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		var next []byte
		ok := true
		select {
		case next, ok = <-r.ch:
		default:
			r.idle.Store(true)
			next, ok = <-r.ch
			r.idle.Store(false)
		}
		if !ok {
			return 0, io.EOF
		}
		r.cur = next
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}
