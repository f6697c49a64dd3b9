package wire

import (
	"net"
	"sync"
)

// Interleaved orders the frames two writers send on one connection: the translator's, which come
// in pieces through a FrameWriter (which holds a frame's start until its rest comes), and
// whole frames exec-proxy writes directly, which go between the translator's. The client's
// connection and the translator's connection to the kubelet each have one.
type Interleaved struct {
	mu   sync.Mutex
	cond sync.Cond // a frame of the translator's ended, or the connection did
	err  error     // the connection takes no more frames
}

// WritePieces writes the translator's bytes p through f, read seeing them first; atEnd, if set,
// runs (with the lock held) when they end a frame.
func (v *Interleaved) WritePieces(f *FrameWriter, p []byte, read func([]byte), atEnd func()) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	read(p)
	err := f.Write(p)
	if err != nil && v.err == nil {
		v.err = err
	}
	if !f.Partial() || err != nil {
		v.cond.Broadcast()
		if atEnd != nil {
			atEnd()
		}
	}
	return err
}

// WriteWhole writes frame to f's writer between the translator's frames, one it began being
// finished first; read sees it first.
func (v *Interleaved) WriteWhole(f *FrameWriter, frame []byte, read func([]byte)) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.waitLocked(func() bool { return !f.Partial() }) {
		return 0, v.err
	}
	read(frame)
	n, err := f.W.Write(frame)
	if err != nil {
		v.err = err
	}
	return n, err
}

// WaitFor waits until ok holds, at the end of one of the translator's frames; false if the
// connection failed first.
func (v *Interleaved) WaitFor(ok func() bool) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.waitLocked(ok)
}

func (v *Interleaved) waitLocked(ok func() bool) bool {
	if v.cond.L == nil {
		v.cond.L = &v.mu
	}
	for !ok() && v.err == nil {
		v.cond.Wait()
	}
	return v.err == nil
}

// End wakes what waits on a connection that takes no more frames.
func (v *Interleaved) End() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.err == nil {
		v.err = net.ErrClosed
	}
	v.cond.Broadcast()
}
