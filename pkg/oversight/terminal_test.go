package oversight

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// fakeScreen keeps what was written; Render is it, prefixed so a test sees which part was rendered.
type fakeScreen struct{ b bytes.Buffer }

func (f *fakeScreen) Write(p []byte) (int, error) { return f.b.Write(p) }
func (f *fakeScreen) Resize(int, int)             {}
func (f *fakeScreen) Render() []byte              { return append([]byte("screen:"), f.b.Bytes()...) }

// syncBuffer is a watcher's terminal; written tells each write.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{}
	block   chan struct{} // when set, writes wait for it
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	if s.block != nil {
		<-s.block
	}
	s.mu.Lock()
	s.b.Write(p)
	s.mu.Unlock()
	select {
	case s.written <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func watch(t *testing.T, term *Terminal, out io.Writer) (context.CancelFunc, chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	before := term.Watchers()
	go func() { done <- term.Watch(ctx, out) }()
	for term.Watchers() == before {
		select {
		case err := <-done:
			done <- err
			return cancel, done
		default:
		}
	}
	return cancel, done
}

func TestWatch(t *testing.T) {
	defer goleak.VerifyNone(t)
	tests := []struct {
		name string
		// run drives the terminal after the watch began; it returns how the watch should end.
		run     func(term *Terminal, cancel context.CancelFunc) error
		want    string
		wantErr error
	}{
		{
			name: "screen, then live output, until the session ends",
			run: func(term *Terminal, _ context.CancelFunc) error {
				term.Output([]byte("live1 "))
				term.Output([]byte("live2"))
				term.End()
				return ErrEnded
			},
			want: "screen:beforelive1 live2", wantErr: ErrEnded,
		},
		{
			name: "what would make the watcher's terminal answer is not sent",
			run: func(term *Terminal, _ context.CancelFunc) error {
				term.Output([]byte("/ # \x1b[6n\x1b]52;c;eA==\x07ok"))
				term.End()
				return ErrEnded
			},
			want: "screen:before/ # ok", wantErr: ErrEnded,
		},
		{
			name: "the watcher leaves",
			run: func(_ *Terminal, cancel context.CancelFunc) error {
				cancel()
				return nil
			},
			want: "screen:before",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			term := New(&fakeScreen{})
			term.Output([]byte("before"))
			out := &syncBuffer{written: make(chan struct{}, 1)}
			cancel, done := watch(t, term, out)
			defer cancel()
			<-out.written // the screen
			wantErr := tc.run(term, cancel)
			if err := <-done; !errors.Is(err, wantErr) {
				t.Fatalf("Watch = %v, want %v", err, wantErr)
			}
			if got := out.String(); got != tc.want {
				t.Errorf("watcher saw %q, want %q", got, tc.want)
			}
			if term.Watchers() != 0 {
				t.Errorf("%d watchers left", term.Watchers())
			}
		})
	}
}

// TestSlowWatcher: a watcher that does not read holds neither the session nor more than
// maxBacklog bytes; it is ended with ErrBehind.
func TestSlowWatcher(t *testing.T) {
	defer goleak.VerifyNone(t)
	term := New(&fakeScreen{})
	block := make(chan struct{})
	out := &syncBuffer{written: make(chan struct{}, 1), block: block}
	_, done := watch(t, term, out)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for range 2 * maxBacklog / len(chunk) {
		term.Output(chunk) // never waits for the watcher
	}
	if term.Watchers() != 0 {
		t.Errorf("a watcher left behind still holds its place: %d watchers", term.Watchers())
	}
	close(block)
	if err := <-done; !errors.Is(err, ErrBehind) {
		t.Fatalf("Watch = %v, want ErrBehind", err)
	}
}

func TestWatchLimits(t *testing.T) {
	defer goleak.VerifyNone(t)
	term := New(&fakeScreen{})
	var cancels []context.CancelFunc
	var dones []chan error
	for range MaxWatchers {
		cancel, done := watch(t, term, io.Discard)
		cancels, dones = append(cancels, cancel), append(dones, done)
	}
	if err := term.Watch(context.Background(), io.Discard); !errors.Is(err, ErrTooManyWatchers) {
		t.Errorf("watch %d: %v, want ErrTooManyWatchers", MaxWatchers+1, err)
	}
	term.End()
	for i, done := range dones {
		if err := <-done; !errors.Is(err, ErrEnded) {
			t.Errorf("watch %d: %v, want ErrEnded", i, err)
		}
		cancels[i]()
	}
	if err := term.Watch(context.Background(), io.Discard); !errors.Is(err, ErrEnded) {
		t.Errorf("watch after the end: %v, want ErrEnded", err)
	}
}

// TestModeratorNotLeftBehind: a moderator's watch (Oversee) that falls maxBacklog behind keeps
// its place, and gets a line that says so and the screen as it is, in place of its backlog.
func TestModeratorNotLeftBehind(t *testing.T) {
	defer goleak.VerifyNone(t)
	term := New(&tailScreen{})
	block := make(chan struct{})
	out := &syncBuffer{written: make(chan struct{}, 1), block: block}
	done := make(chan error, 1)
	go func() { done <- term.Oversee(context.Background(), out) }()
	for term.Watchers() == 0 {
		runtime.Gosched()
	}
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for range 2 * maxBacklog / len(chunk) {
		term.Output(chunk)
	}
	term.Output([]byte("last"))
	if term.Watchers() != 1 {
		t.Fatalf("the moderator lost its place: %d watchers", term.Watchers())
	}
	close(block)
	term.End()
	if err := <-done; !errors.Is(err, ErrEnded) {
		t.Fatalf("Oversee = %v, want ErrEnded", err)
	}
	got := out.String()
	i := strings.Index(got, string(skipped))
	if i < 0 || !strings.HasPrefix(got[i+len(skipped):], "screen:") || !strings.HasSuffix(got, "last") {
		t.Errorf("the moderator's terminal (%d bytes) has no line that it fell behind followed by the screen", len(got))
	}
	if len(got) > maxBacklog+2*len(skipped)+64 {
		t.Errorf("the moderator was written %d bytes: more than a backlog and a redraw", len(got))
	}
}

// tailScreen is a screen of bounded size, as terminal.Screen is: its last 16 bytes.
type tailScreen struct{ tail []byte }

func (f *tailScreen) Write(p []byte) (int, error) {
	f.tail = append(f.tail, p...)
	f.tail = f.tail[max(0, len(f.tail)-16):]
	return len(p), nil
}
func (f *tailScreen) Resize(int, int) {}
func (f *tailScreen) Render() []byte  { return append([]byte("screen:"), f.tail...) }
