package spdyclient

import (
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/moby/spdystream"
	"github.com/moby/spdystream/spdy"

	corev1 "k8s.io/api/core/v1"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
	wirespdy "github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
)

// Stream is one of a Conn's streams (httpstream.Stream). Its state is under the Conn's mu.
type Stream struct {
	c       *Conn
	id      spdy.StreamId
	headers http.Header
	replied chan struct{} // closed at the SYN_REPLY, or when the stream or connection ends first

	replyErr   error
	isReplied  bool
	buf        []byte // data read and not yet Read: at most maxBuffered bytes
	remoteDone bool   // the kubelet's FIN or RST, or the reading ended: Read returns io.EOF once buf is empty
	localDone  bool   // this side's FIN or RST went out
	registered bool   // Close resets it (CreateStream gave it, RemoveStreams did not take it back)
	// bound is the most the stream may carry in all (0: no bound but maxBuffered at a time): the
	// error stream's, which client-go reads whole into memory before it decodes it.
	bound, total int
}

func newStream(c *Conn, id spdy.StreamId, headers http.Header) *Stream {
	s := &Stream{c: c, id: id, headers: headers, replied: make(chan struct{})}
	if headers.Get(corev1.StreamType) == corev1.StreamTypeError {
		s.bound = wire.MaxErrorMessage
	}
	return s
}

// errOverBound: the kubelet sent more on a stream than its bound.
var errOverBound = errors.New("the kubelet sent more on the error stream than exec-proxy takes")

// Read reads the stream's data; io.EOF once the kubelet ended it and all was read.
func (s *Stream) Read(p []byte) (int, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	for len(s.buf) == 0 && !s.remoteDone {
		s.c.cond.Wait()
	}
	if len(s.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.buf)
	if s.buf = s.buf[n:]; len(s.buf) == 0 {
		s.buf = nil // an idle stream keeps no buffer
	}
	s.c.cond.Broadcast()
	return n, nil
}

// Write writes p in DATA frames. Unlike spdystream's, it fails once this side ended the stream.
func (s *Stream) Write(p []byte) (int, error) {
	s.c.mu.Lock()
	done := s.localDone
	s.c.mu.Unlock()
	if done {
		return 0, spdystream.ErrWriteClosedStream
	}
	n := 0
	for n < len(p) {
		m := min(len(p)-n, wirespdy.MaxDataLength)
		if err := s.c.writeData(s.id, false, p[n:n+m]); err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

// Close ends this side of the stream: an empty DATA frame with FIN.
func (s *Stream) Close() error {
	s.c.mu.Lock()
	done, both := s.localDone, s.remoteDone
	s.localDone = true
	s.c.mu.Unlock()
	if done {
		return spdystream.ErrWriteClosedStream
	}
	if both {
		s.c.remove(s)
	}
	return s.c.writeData(s.id, true, nil)
}

// Reset ends both sides: a RST_STREAM (CANCEL) unless this side had ended it; reads return io.EOF
// and what was not read is dropped.
func (s *Stream) Reset() error {
	s.c.remove(s)
	s.c.mu.Lock()
	done := s.localDone
	s.localDone, s.remoteDone, s.buf = true, true, nil
	s.c.cond.Broadcast()
	s.c.mu.Unlock()
	if done {
		return nil
	}
	return s.c.write(wirespdy.AppendRstStream(nil, s.id, spdy.Cancel))
}

// Headers are the headers the stream was opened with.
func (s *Stream) Headers() http.Header { return s.headers }

// Identifier is the stream's id.
func (s *Stream) Identifier() uint32 { return uint32(s.id) }

func (s *Stream) register(r bool) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.registered = r
}

func (s *Stream) isRegistered() bool {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.registered
}

func (s *Stream) replyError() error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.replyErr
}

// reply takes the kubelet's SYN_REPLY; a second one is ignored (handleReplyFrame). It tells
// whether both sides have now ended the stream.
func (s *Stream) reply(fin bool) bool {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.isReplied {
		return false
	}
	s.isReplied = true
	close(s.replied)
	return fin && s.remoteEndedLocked()
}

// deliver keeps p for Read, waiting while the stream holds maxBuffered bytes. Data of a stream
// not yet replied to, or that the kubelet ended, is dropped (handleDataFrame). Data past the
// stream's bound is dropped too, and errOverBound returned: the connection is then ended.
func (s *Stream) deliver(p []byte) error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.bound > 0 {
		if s.total += len(p); s.total > s.bound {
			return errOverBound
		}
	}
	for len(p) > 0 {
		for len(s.buf) >= maxBuffered && !s.remoteDone && !s.c.closing {
			s.c.cond.Wait()
		}
		if !s.isReplied || s.remoteDone || s.c.closing {
			return nil
		}
		n := min(len(p), maxBuffered-len(s.buf))
		s.buf, p = append(s.buf, p[:n]...), p[n:]
		s.c.cond.Broadcast()
	}
	return nil
}

// remoteEnded takes the kubelet's FIN (remoteStreamFinish), unless the stream is not yet replied
// to (handleDataFrame drops the frame); it tells whether both sides have now ended the stream,
// which is then forgotten.
func (s *Stream) remoteEnded() bool {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.isReplied && s.remoteEndedLocked()
}

func (s *Stream) remoteEndedLocked() bool {
	s.remoteDone = true
	s.c.cond.Broadcast()
	return s.localDone
}

// resetByKubelet takes the kubelet's RST_STREAM (handleResetFrame): CreateStream fails with
// spdystream.ErrReset if it waits; data already read can still be Read.
func (s *Stream) resetByKubelet() {
	s.c.remove(s)
	s.ended(spdystream.ErrReset)
}

// connEnded: the connection's reading ended.
func (s *Stream) connEnded() { s.ended(ErrClosed) }

func (s *Stream) ended(replyErr error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.remoteDone, s.localDone = true, true
	if !s.isReplied {
		s.isReplied, s.replyErr = true, replyErr
		close(s.replied)
	}
	s.c.cond.Broadcast()
}

// WriteTo writes the stream's data to w as it comes, until the kubelet ends the stream: what
// io.Copy from the stream uses, without a copy buffer of its own (client-go's remotecommand holds
// one for each stream it copies, for the session's life, otherwise).
func (s *Stream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		s.c.mu.Lock()
		for len(s.buf) == 0 && !s.remoteDone {
			s.c.cond.Wait()
		}
		p := s.buf
		s.buf = nil
		s.c.cond.Broadcast()
		s.c.mu.Unlock()
		if len(p) == 0 {
			return total, nil
		}
		n, err := w.Write(p)
		total += int64(n)
		if err == nil && n < len(p) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return total, err
		}
	}
}

// smallCopy is ReadFrom's buffer while what it reads is not flowing.
const smallCopy = 512

// largeCopies are ReadFrom's buffers while reads fill the small one.
var largeCopies = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// ReadFrom writes what it reads from r to the stream until r's io.EOF: what io.Copy to the stream
// uses. It reads with a small buffer, and with a pooled large one only while reads fill the small
// one, so that an idle stdin holds 512 bytes, not io.Copy's 32 KiB.
func (s *Stream) ReadFrom(r io.Reader) (int64, error) {
	var small [smallCopy]byte
	buf := small[:]
	var large *[]byte
	defer func() {
		if large != nil {
			largeCopies.Put(large)
		}
	}()
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			m, werr := s.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return total, nil
		case err != nil:
			return total, err
		case n == len(buf) && large == nil:
			large = largeCopies.Get().(*[]byte)
			buf = *large
		case n < len(buf) && large != nil:
			largeCopies.Put(large)
			large, buf = nil, small[:]
		}
	}
}
