package keystroke

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/exec-proxy/exec-proxy/bench/internal/workload"
)

// limits bound every wait of a session, so that a hung kubectl fails the part instead of hanging it.
type limits struct {
	ready  time.Duration // from start to the marker's echo
	resend time.Duration // between markers while none has echoed
	echo   time.Duration // one keystroke's echo
	exit   time.Duration // from the end of input to the process's exit
	flow   time.Duration // a bulk session's first MiB
}

var defaultLimits = limits{ready: 60 * time.Second, resend: 250 * time.Millisecond, echo: 10 * time.Second, exit: 60 * time.Second, flow: 60 * time.Second}

// marker is written until it echoes: not a letter, so that a late one is not taken for a keystroke's
// echo, and unlikely in what kubectl prints on a terminal before the session is up.
const marker = '~'

// chunk is one read of the session's output and when the read returned.
type chunk struct {
	at   time.Time
	data []byte
}

// session is one process (kubectl, or a fake in tests) whose input and output the bench holds: a
// pty in raw mode (exec -it) or pipes (exec -i). Its output goes to chunks, or, for a bulk
// transfer, to count.
type session struct {
	cmd     *exec.Cmd
	tty     bool
	in      *os.File // pty master or stdin's write end
	out     *os.File // pty master or stdout's read end
	chunks  chan chunk
	count   *workload.Counter
	tail    tail // the last of stdout and stderr, for errors
	lim     limits
	cancel  context.CancelFunc
	done    chan struct{} // closed when Wait returned; waitErr is set then
	waitErr error
	read    chan struct{} // closed when the reader returned
	once    sync.Once
}

// start runs argv with a terminal (tty) or pipes. When count is set, the output is only counted.
func start(ctx context.Context, argv []string, tty bool, count *workload.Counter, lim limits) (*session, error) {
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// Its own process group, killed whole (a fake's children too), and killed if the bench dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !tty, Setsid: tty, Setctty: tty, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	s := &session{cmd: cmd, tty: tty, count: count, lim: lim, cancel: cancel, chunks: make(chan chunk, 256),
		done: make(chan struct{}), read: make(chan struct{})}
	cmd.Stderr = &s.tail
	var child []*os.File // the ends the child holds, closed here once it has them
	if tty {
		ptmx, t, err := pty.Open()
		if err != nil {
			cancel()
			return nil, fmt.Errorf("opening a pty: %w", err)
		}
		// Raw before kubectl starts, so that no byte is held for a line or echoed by this side's
		// terminal; kubectl makes it raw too, once it runs.
		if err := makeRaw(t); err == nil {
			err = pty.Setsize(t, &pty.Winsize{Rows: 24, Cols: 80})
		}
		if err != nil {
			ptmx.Close()
			t.Close()
			cancel()
			return nil, fmt.Errorf("setting up the pty: %w", err)
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = t, t, t
		s.in, s.out, child = ptmx, ptmx, []*os.File{t}
	} else {
		inR, inW, err := os.Pipe()
		if err != nil {
			cancel()
			return nil, err
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			inR.Close()
			inW.Close()
			cancel()
			return nil, err
		}
		cmd.Stdin, cmd.Stdout = inR, outW
		s.in, s.out, child = inW, outR, []*os.File{inR, outW}
	}
	err := cmd.Start()
	for _, f := range child {
		f.Close()
	}
	if err != nil {
		s.in.Close()
		s.out.Close()
		cancel()
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	go s.reader()
	return s, nil
}

// reader timestamps each read of the output as it returns, and hands it on (or counts it).
func (s *session) reader() {
	defer close(s.read)
	defer close(s.chunks)
	buf := make([]byte, 64<<10)
	for {
		n, err := s.out.Read(buf)
		at := time.Now()
		if n > 0 {
			if s.count != nil {
				_, _ = s.count.Write(buf[:n])
				continue
			}
			_, _ = s.tail.Write(buf[:n])
			select {
			case s.chunks <- chunk{at: at, data: bytes.Clone(buf[:n])}:
			case <-s.done: // nobody reads any more
				return
			}
		}
		if err != nil {
			return // EOF on a pipe, EIO on a pty whose other side closed, or closed by stop
		}
	}
}

// ready writes the marker until it echoes, then lets what is still in flight arrive.
func (s *session) ready() error {
	deadline := time.NewTimer(s.lim.ready)
	defer deadline.Stop()
	resend := time.NewTicker(s.lim.resend)
	defer resend.Stop()
	if _, err := s.in.Write([]byte{marker}); err != nil {
		return s.failed("writing the marker", err)
	}
	for echoed := false; !echoed; {
		select {
		case c, ok := <-s.chunks:
			if !ok {
				return s.failed("waiting for the marker's echo", errors.New("the output ended"))
			}
			echoed = bytes.IndexByte(c.data, marker) >= 0
		case <-resend.C:
			if _, err := s.in.Write([]byte{marker}); err != nil {
				return s.failed("writing the marker", err)
			}
		case <-deadline.C:
			return s.failed("waiting for the marker's echo", fmt.Errorf("none in %v", s.lim.ready))
		}
	}
	for quiet := time.NewTimer(2 * s.lim.resend); ; {
		select {
		case _, ok := <-s.chunks:
			if !ok {
				return s.failed("after the marker's echo", errors.New("the output ended"))
			}
			quiet.Reset(2 * s.lim.resend)
		case <-quiet.C:
			return nil
		case <-deadline.C:
			return s.failed("after the marker's echo", fmt.Errorf("output still arrives %v after start", s.lim.ready))
		}
	}
}

// echo writes b and returns how long until b first arrived back.
func (s *session) echo(b byte) (time.Duration, error) {
	timer := time.NewTimer(s.lim.echo)
	defer timer.Stop()
	t0 := time.Now()
	if _, err := s.in.Write([]byte{b}); err != nil {
		return 0, s.failed("typing", err)
	}
	for {
		select {
		case c, ok := <-s.chunks:
			if !ok {
				return 0, s.failed("waiting for an echo", errors.New("the output ended"))
			}
			if bytes.IndexByte(c.data, b) >= 0 {
				return c.at.Sub(t0), nil
			}
		case <-timer.C:
			return 0, s.failed("waiting for an echo", fmt.Errorf("none in %v", s.lim.echo))
		}
	}
}

// echoes types n letters one at a time, each after the last one's echo and a pause drawn from
// [pauseMin, pauseMax) as a person types, and returns each round trip.
func (s *session) echoes(n int, pauseMin, pauseMax time.Duration) ([]time.Duration, error) {
	got := make([]time.Duration, 0, n)
	for i := range n {
		d, err := s.echo(byte('a' + i%26))
		if err != nil {
			return got, fmt.Errorf("keystroke %d: %w", i+1, err)
		}
		got = append(got, d)
		pause := pauseMin
		if pauseMax > pauseMin {
			pause += rand.N(pauseMax - pauseMin)
		}
		time.Sleep(pause)
	}
	return got, nil
}

// waitFlow waits until a bulk session has sent its first MiB.
func (s *session) waitFlow() error {
	deadline := time.Now().Add(s.lim.flow)
	for s.count.Bytes() < 1<<20 {
		select {
		case <-s.done:
			return s.failed("waiting for the bulk transfer", errors.New("it exited"))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return s.failed("waiting for the bulk transfer", fmt.Errorf("less than 1 MiB in %v", s.lim.flow))
		}
	}
	return nil
}

// close ends the input as its user would: exec -i closes stdin; exec -it types Enter (cat then
// writes the line back) and Ctrl-D at the start of a line (end of file for cat). It waits for the
// process to exit with status 0, and kills it after s.lim.exit.
func (s *session) close() error {
	var err error
	if s.tty {
		_, err = s.in.Write([]byte("\n\x04"))
	} else {
		err = s.in.Close()
	}
	if err != nil {
		return s.failed("ending the input", err)
	}
	select {
	case <-s.done:
	case <-time.After(s.lim.exit):
		return s.failed("ending", fmt.Errorf("still running %v after its input ended", s.lim.exit))
	}
	s.stop()
	if s.waitErr != nil {
		return fmt.Errorf("%s exited: %w (output: %q)", filepath.Base(s.cmd.Path), s.waitErr, s.tail.String())
	}
	return nil
}

// stop kills the process if it still runs, closes this side's files and waits for both
// goroutines: after it, nothing of the session is left.
func (s *session) stop() {
	s.once.Do(func() {
		s.cancel()
		<-s.done
		s.in.Close()
		if s.out != s.in {
			s.out.Close()
		}
		<-s.read
	})
}

// failed stops the session and names what it was doing, with the end of what it wrote.
func (s *session) failed(doing string, err error) error {
	s.stop()
	return fmt.Errorf("%s %s: %w (output: %q)", filepath.Base(s.cmd.Path), doing, err, s.tail.String())
}

// tail keeps the last 1 KiB written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 1024 {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-1024:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// makeRaw sets a terminal as cfmakeraw(3) does: bytes pass at once, unchanged and not echoed.
func makeRaw(f *os.File) error {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

var _ io.Writer = (*tail)(nil)
