// Package oversight shows a live TTY session to those who oversee it: what is on its screen, then
// its output as it comes, to each watcher, never holding the session back for a slow one.
package oversight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Screen is the session's screen as its output drew it (package terminal's Screen).
type Screen interface {
	io.Writer // never fails
	Resize(width, height int)
	// Render returns bytes that redraw the screen on a fresh terminal.
	Render() []byte
}

// Bounds on what watchers hold: a watcher that falls this far behind is ended, with a line that
// says so, rather than the session waiting for it or its backlog growing.
const (
	// MaxWatchers is the most watchers one session has at once.
	MaxWatchers = 16
	// maxBacklog is the most output one watcher holds unwritten.
	maxBacklog = 1 << 20
)

// Errors a watch ends with.
var (
	// ErrEnded: the session ended.
	ErrEnded = errors.New("the session ended")
	// ErrTooManyWatchers: the session has MaxWatchers already.
	ErrTooManyWatchers = fmt.Errorf("the session has %d watchers already", MaxWatchers)
	// ErrBehind: the watcher read too slowly and was left behind.
	ErrBehind = fmt.Errorf("the watcher fell more than %d bytes behind the session's output", maxBacklog)
)

// Terminal is one TTY session's terminal as its watchers see it. Output and Resize are called as
// the session's frames are read; Watch serves a watcher.
type Terminal struct {
	mu       sync.Mutex
	screen   Screen
	watchers map[*watcher]struct{}
	ended    bool
	done     chan struct{} // closed as the session ends
	// sanitizer filters the output watchers are sent (see sanitize.go) into filtered, reused.
	sanitizer sanitizer
	filtered  []byte
}

// maxFiltered bounds the buffer a terminal keeps between outputs.
const maxFiltered = 64 << 10

// New returns the terminal of a session whose screen is screen.
func New(screen Screen) *Terminal {
	return &Terminal{screen: screen, watchers: map[*watcher]struct{}{}, done: make(chan struct{})}
}

// Output is what the session wrote to its terminal; p is the caller's only during the call.
func (t *Terminal) Output(p []byte) {
	if len(p) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = t.screen.Write(p)
	// Filtered with no one watching too, so that a watch begun amid a sequence gets none of it.
	filtered := t.sanitizer.filter(t.filtered[:0], p)
	t.filtered = filtered
	if cap(filtered) > maxFiltered {
		t.filtered = nil
	}
	if len(t.watchers) == 0 || len(filtered) == 0 {
		return
	}
	chunk := append([]byte(nil), filtered...) // shared by the watchers, which only read it
	for w := range t.watchers {
		if !w.push(chunk, t.rendered) { // left behind: its place is free at once, whether or not it reads on
			delete(t.watchers, w)
		}
	}
}

// Resize is a terminal size the session's client sent.
func (t *Terminal) Resize(width, height int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.screen.Resize(width, height)
}

// End ends the session's watches; a watch begun after returns ErrEnded at once.
func (t *Terminal) End() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.ended {
		close(t.done)
	}
	t.ended = true
	for w := range t.watchers {
		w.end(ErrEnded)
	}
}

// Ended is closed once the session ended.
func (t *Terminal) Ended() <-chan struct{} { return t.done }

// Full tells whether the session has MaxWatchers already.
func (t *Terminal) Full() bool { return t.Watchers() >= MaxWatchers }

// Watchers is how many watch now.
func (t *Terminal) Watchers() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.watchers)
}

// Watch writes to out what is on the screen now, then the session's output as it comes, until
// ctx ends (nil), the session ends (ErrEnded), the watcher falls behind (ErrBehind) or out fails.
func (t *Terminal) Watch(ctx context.Context, out io.Writer) error { return t.watch(ctx, out, false) }

// Oversee is Watch for a moderator, who is never left behind: one that falls maxBacklog behind
// has what it had not read replaced with the screen as it is then, after a line that says so.
// Else the session's owner could shake off its moderator with output, and run unmoderated.
func (t *Terminal) Oversee(ctx context.Context, out io.Writer) error { return t.watch(ctx, out, true) }

func (t *Terminal) watch(ctx context.Context, out io.Writer, redraw bool) error {
	w, screen, err := t.add(redraw)
	if err != nil {
		return err
	}
	defer t.remove(w)
	stop := context.AfterFunc(ctx, func() { w.end(nil) })
	defer stop()
	if _, err := out.Write(screen); err != nil {
		return fmt.Errorf("writing to the watcher: %w", err)
	}
	for {
		chunk, err := w.next()
		if chunk == nil {
			return err
		}
		if _, err := out.Write(chunk); err != nil {
			return fmt.Errorf("writing to the watcher: %w", err)
		}
	}
}

func (t *Terminal) add(redraw bool) (*watcher, []byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.ended:
		return nil, nil, ErrEnded
	case len(t.watchers) >= MaxWatchers:
		return nil, nil, ErrTooManyWatchers
	}
	w := &watcher{redraw: redraw}
	w.cond.L = &w.mu
	t.watchers[w] = struct{}{}
	return w, t.rendered(), nil
}

// rendered is the screen as it is, for a watcher's fresh terminal; mu is held.
func (t *Terminal) rendered() []byte {
	var fresh sanitizer // the screen is the session's own text, which may hold what a terminal acts on
	return fresh.filter(nil, t.screen.Render())
}

func (t *Terminal) remove(w *watcher) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.watchers, w)
}

// watcher is one watch's backlog: the output not yet written to it.
type watcher struct {
	mu     sync.Mutex
	cond   sync.Cond
	queue  [][]byte
	queued int
	done   bool
	err    error
	redraw bool // a moderator's: redrawn, not ended, when it falls behind (see Oversee)
}

// skipped is the line a moderator who fell behind sees before the screen is redrawn for it.
var skipped = []byte("\r\n[exec-proxy: you fell behind the session's output; what you missed is in its recording; the screen as it is now follows]\r\n")

// push queues chunk; past maxBacklog the watcher ends instead, and push reports false, or is
// given screen() in place of its backlog (a moderator's).
func (w *watcher) push(chunk []byte, screen func() []byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return true
	}
	if w.queued+len(chunk) > maxBacklog && w.redraw {
		w.queue = [][]byte{skipped, screen()}
		w.queued = len(skipped) + len(w.queue[1])
		w.cond.Signal()
		return true
	}
	if w.queued+len(chunk) > maxBacklog {
		w.done, w.err, w.queue, w.queued = true, ErrBehind, nil, 0
		w.cond.Signal()
		return false
	}
	w.queue = append(w.queue, chunk)
	w.queued += len(chunk)
	w.cond.Signal()
	return true
}

// end ends the watch with err once its backlog is written (ErrEnded) or at once (otherwise).
func (w *watcher) end(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.done, w.err = true, err
	if err != ErrEnded { // the session's last output is still shown; a cancelled watch stops
		w.queue, w.queued = nil, 0
	}
	w.cond.Signal()
}

// next returns the next chunk to write, or nil and why the watch ends.
func (w *watcher) next() ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.queue) == 0 && !w.done {
		w.cond.Wait()
	}
	if len(w.queue) == 0 {
		return nil, w.err
	}
	chunk := w.queue[0]
	w.queue[0] = nil
	w.queue = w.queue[1:]
	w.queued -= len(chunk)
	return chunk, nil
}
