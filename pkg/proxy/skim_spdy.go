package proxy

import (
	"io"
	"sync"

	"github.com/moby/spdystream/spdy"
)

// spdyQueue bounds the chunks waiting for a direction's frame reader. The relay never waits for it:
// when it is full the reader is given up and the exit code reported unknown.
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
		s.stats.lost("the frame reader fell behind the session")
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
			if f.Flags&spdy.DataFlagFin != 0 && len(s.msgs[f.StreamId]) > 0 {
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

// chunkReader is an io.Reader over copies of what crossed the connection. offer never blocks.
type chunkReader struct {
	ch      chan []byte
	cur     []byte
	mu      sync.Mutex
	stopped bool // ended, abandoned or overflowed: nothing more is queued
}

func newChunkReader() *chunkReader { return &chunkReader{ch: make(chan []byte, spdyQueue)} }

func (r *chunkReader) offer(p []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || len(p) == 0 {
		return !r.stopped || len(p) == 0
	}
	select {
	case r.ch <- append([]byte(nil), p...):
		return true
	default:
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
	r.end()
	for range r.ch { // let queued copies be collected
	}
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		next, ok := <-r.ch
		if !ok {
			return 0, io.EOF
		}
		r.cur = next
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}
