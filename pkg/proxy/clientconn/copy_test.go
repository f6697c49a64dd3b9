package clientconn

import (
	"bytes"
	"context"
	"io"
	"net"
	"reflect"
	"runtime"
	"testing"
	"time"

	"golang.org/x/time/rate"
	utilwait "k8s.io/apimachinery/pkg/util/wait"

	"github.com/exec-proxy/exec-proxy/pkg/proxy/internal/leaktest"
)

func TestCopyAdaptive(t *testing.T) {
	cases := []struct {
		name  string
		reads []int // sizes the source returns, in order
		large []bool
	}{
		{"keystrokes stay small", []int{1, 3, 1}, []bool{false, false, false}},
		{"bulk goes large and back", []int{smallCopyBuffer, 32 << 10, 16 << 10, 5}, []bool{false, true, true, true}},
		{"a burst's first read fills the small one, the rest is read large", []int{4 << 10}, []bool{false, true}},
		{"idle after bulk is small again", []int{smallCopyBuffer, 100, 7}, []bool{false, true, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			total := 0
			for _, s := range tc.reads {
				total += s
			}
			src := &sizedReader{sizes: append([]int(nil), tc.reads...)}
			var dst bytes.Buffer
			n, err := copyAdaptive(&dst, src)
			if err != nil || n != int64(total) || dst.Len() != total {
				t.Fatalf("copied %d (%d in dst) of %d: %v", n, dst.Len(), total, err)
			}
			if !reflect.DeepEqual(src.large, tc.large) {
				t.Errorf("large buffers offered %v, want %v", src.large, tc.large)
			}
		})
	}
}

// sizedReader returns reads of the given sizes, then EOF, and notes whether each was offered the
// large buffer.
type sizedReader struct {
	sizes []int
	large []bool
}

func (r *sizedReader) Read(p []byte) (int, error) {
	if len(r.sizes) == 0 {
		return 0, io.EOF
	}
	r.large = append(r.large, len(p) == largeCopyBuffer)
	n := min(r.sizes[0], len(p))
	if r.sizes[0] -= n; r.sizes[0] == 0 {
		r.sizes = r.sizes[1:]
	}
	return n, nil
}

// A session whose client stops reading still ends: closing does not wait on a full queue for ever.
func TestOutQueueFinishWithStalledClient(t *testing.T) {
	leaktest.Check(t)
	client, peer := net.Pipe() // nobody reads peer: every write to client blocks
	defer peer.Close()
	limit := rate.NewLimiter(1<<30, LimiterBurst)
	c := &Conn{Conn: client, s: stubSession{ctx: context.Background()}}
	c.out = newOutQueue(c, limit, outQueueChunks)
	writing := make(chan error, 1)
	go func() { // more than the queue holds: this write waits for room
		_, err := c.out.write(make([]byte, (outQueueChunks+8)*LimiterBurst))
		writing <- err
	}()
	for len(c.out.chunks) < outQueueChunks { // the queue is full
		runtime.Gosched()
	}
	defer func(g time.Duration) { flushGrace = g }(flushGrace)
	flushGrace = 100 * time.Millisecond
	closed := make(chan struct{})
	go func() { _ = c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(utilwait.ForeverTestTimeout):
		t.Fatal("Close waited for a client that never reads")
	}
	if err := <-writing; err == nil {
		t.Error("the write into a closed queue succeeded")
	}
}

// The queue holds at most about outQueueDelay of output at the limit, so that a pong queued behind
// it reaches a WebSocket client in time.
func TestOutQueueLen(t *testing.T) {
	cases := []struct {
		bytesPerSec float64
		want        int
	}{
		{1 << 10, 2},              // 10 KiB: the floor
		{16 << 10, 5},             // 160 KiB in 32 KiB chunks
		{1 << 20, outQueueChunks}, // 10 MiB: the 256 KiB cap
	}
	for _, tc := range cases {
		if got := outQueueLen(tc.bytesPerSec); got != tc.want {
			t.Errorf("outQueueLen(%v) = %d, want %d", tc.bytesPerSec, got, tc.want)
		}
	}
}

// stubSession is the session of a connection whose writes are only counted.
type stubSession struct {
	Session // nil: the other methods are not called
	ctx     context.Context
}

func (s stubSession) Context() context.Context { return s.ctx }
func (s stubSession) CountOut(int)             {}
