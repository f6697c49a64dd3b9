package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"

	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/exec-proxy/exec-proxy/internal/poll"
	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
)

// What an idle exec session costs exec-proxy, as `kubectl exec -i POD -- cat` held open after one
// byte echoed: heap and stacks after a forced collection, and goroutines, per session. The fake
// kubelet and the clients run in processes of their own (this test binary again, as
// TestIdleHelper), so that this process holds exec-proxy's side alone: the Proxier, the front
// server's TLS connections, and what the sessions hold. Figures are t.Log'd; the only failure is a
// generous bound against regressions. `-idle-profile DIR` writes heap profiles before and while
// the sessions are held, for `go tool pprof -top -sample_index=inuse_space -base before after`.

var (
	idleSessionCount = flag.Int("idle-sessions", 40, "sessions TestIdleSessionMemory holds open per protocol")
	idleProfileDir   = flag.String("idle-profile", "", "directory for TestIdleSessionMemory's heap and goroutine profiles")
)

// idleHelperEnv names a helper process's role (see TestIdleHelper); idleArgsEnv its arguments.
const (
	idleHelperEnv = "EXECPROXY_IDLE_HELPER"
	idleArgsEnv   = "EXECPROXY_IDLE_ARGS"
)

func TestIdleSessionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	if *idleProfileDir != "" {
		runtime.MemProfileRate = 1 // every allocation, not one in 512 KiB
	}
	// bound is the most heap and stacks in KiB an idle session may cost before the test fails: a
	// regression bound, far above what is measured, not a goal.
	for _, c := range []struct {
		name, protocol    string
		kubeletWebSockets bool
		bound             float64
	}{
		{"spdy", "spdy", false, 128},
		{"websocket-translated", "websocket", false, 256},
		{"websocket-passed-through", "websocket", true, 128},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := measureIdle(t, c.name, c.protocol, c.kubeletWebSockets, *idleSessionCount)
			t.Logf("%s, %d sessions: per session %.1f KiB heap in use + %.1f KiB stacks = %.1f KiB (live heap %.1f KiB), %.1f goroutines",
				c.name, m.sessions, m.heapInUse, m.stacks, m.heapInUse+m.stacks, m.liveHeap, m.goroutines)
			if m.heapInUse+m.stacks > c.bound {
				t.Errorf("an idle session costs %.1f KiB, over the regression bound of %.0f KiB", m.heapInUse+m.stacks, c.bound)
			}
		})
	}
}

// idleCost is what one idle session costs, in KiB and goroutines.
type idleCost struct {
	sessions                                int
	heapInUse, liveHeap, stacks, goroutines float64
}

func measureIdle(t *testing.T, name, protocol string, kubeletWebSockets bool, n int) idleCost {
	kubeletRole := "kubelet-spdy"
	if kubeletWebSockets {
		kubeletRole = "kubelet-websocket"
	}
	kubelet := startIdleHelper(t, kubeletRole)
	fields := strings.Fields(kubelet.line(t))
	port, _ := strconv.Atoi(fields[0])
	node := nodeAt("n1", "127.0.0.1", int32(port))
	if kubeletWebSockets {
		node.Status.DeclaredFeatures = []string{nodeconn.ExtendWebSocketsToKubelet}
	}
	p := newTestProxier(t, fields[1], Limits{}, runningPod("p", "n1", "a"), node)
	h, _ := frontHandler(p, execRequest)
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = false
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := writeCA(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	hold := func(n int) *idleHelper {
		c := startIdleHelper(t, "client", srv.URL, ca, protocol, strconv.Itoa(n))
		if l := c.line(t); l != "ready" {
			t.Fatalf("the clients: %s", l)
		}
		return c
	}
	// One session first, so that what the first session alone sets up (TLS session caches, pools,
	// metrics' children) is in the baseline.
	hold(1).end(t)
	waitNoSessions(t, p)
	before := memNow(t, name, "before")
	clients := hold(n)
	held := memNow(t, name, "held")
	if got := len(p.Sessions()); got != n {
		t.Errorf("%d sessions live, want %d", got, n)
	}
	clients.end(t)
	waitNoSessions(t, p)
	kubelet.end(t)
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) / 1024 }
	return idleCost{sessions: n,
		heapInUse: per(held.HeapInuse, before.HeapInuse), liveHeap: per(held.HeapAlloc, before.HeapAlloc),
		stacks: per(held.StackInuse, before.StackInuse), goroutines: float64(held.goroutines-before.goroutines) / float64(n)}
}

func waitNoSessions(t *testing.T, p *Proxier) {
	t.Helper()
	poll.Until(t, func() bool { return len(p.Sessions()) == 0 })
}

type memFigures struct {
	runtime.MemStats
	goroutines int
}

// memNow is the process's memory after a forced collection, with its heap and goroutine profiles
// written as NAME-WHEN.{heap,goroutine} when -idle-profile is set.
func memNow(t *testing.T, name, when string) memFigures {
	t.Helper()
	runtime.GC()
	runtime.GC() // what the first one's finalizers freed
	var m memFigures
	runtime.ReadMemStats(&m.MemStats)
	m.goroutines = runtime.NumGoroutine()
	if *idleProfileDir == "" {
		return m
	}
	for _, profile := range []string{"heap", "goroutine"} {
		f, err := os.Create(filepath.Join(*idleProfileDir, name+"-"+when+"."+profile))
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.Lookup(profile).WriteTo(f, 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// idleHelper is a helper process: it writes lines on its stdout, and ends when its stdin closes.
type idleHelper struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Scanner
	stderr *bytes.Buffer
	once   sync.Once
}

func startIdleHelper(t *testing.T, role string, args ...string) *idleHelper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleHelper$", "-test.v=false")
	cmd.Env = append(os.Environ(), idleHelperEnv+"="+role, idleArgsEnv+"="+strings.Join(args, " "))
	var stderr bytes.Buffer // klog's, of every session's end: shown only if the helper fails
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &idleHelper{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout), stderr: &stderr}
	t.Cleanup(func() { h.end(t) })
	return h
}

// line is the helper's next line: what it tells before it holds.
func (h *idleHelper) line(t *testing.T) string {
	t.Helper()
	if !h.out.Scan() {
		t.Fatalf("helper %s ended: %v", h.cmd.Env[len(h.cmd.Env)-2], h.out.Err())
	}
	return h.out.Text()
}

func (h *idleHelper) end(t *testing.T) {
	h.once.Do(func() {
		_ = h.stdin.Close()
		for h.out.Scan() { // the rest of its output, so that it never blocks writing it
		}
		if err := h.cmd.Wait(); err != nil {
			t.Errorf("helper %s: %v\n%s", h.cmd.Env[len(h.cmd.Env)-2], err, h.stderr)
		}
	})
}

// TestIdleHelper is a helper process of TestIdleSessionMemory, and skipped otherwise: the fake
// kubelet ("kubelet-spdy", "kubelet-websocket": it prints its port and CA file), or the clients
// ("client URL CA PROTOCOL N": N sessions of cat, each with one byte echoed, then "ready"). Each
// holds until its stdin closes.
func TestIdleHelper(t *testing.T) {
	role := os.Getenv(idleHelperEnv)
	args := strings.Fields(os.Getenv(idleArgsEnv))
	switch role {
	case "":
		t.Skip("a helper process of TestIdleSessionMemory")
	case "kubelet-spdy", "kubelet-websocket":
		k := newFakeKubeletWith(t, fakeKubeletOptions{webSockets: role == "kubelet-websocket"})
		fmt.Printf("%d %s\n", k.port(t), k.caFile)
		_, _ = io.Copy(io.Discard, os.Stdin)
	case "client":
		n, _ := strconv.Atoi(args[3])
		end, err := holdIdle(t, args[0], args[1], args[2], n)
		if err != nil {
			fmt.Println(err)
			t.Fatal(err)
		}
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin)
		end()
	default:
		t.Fatalf("unknown helper role %q", role)
	}
}

// holdIdle opens n sessions of cat, one after the other, each once its byte came back.
func holdIdle(t *testing.T, base, caFile, protocol string, n int) (func(), error) {
	cfg := &restclient.Config{Host: base, WrapTransport: withUser("alice"), TLSClientConfig: restclient.TLSClientConfig{CAFile: caFile}}
	q := url.Values{"command": {"cat"}, "container": {"a"}, "stdin": {"true"}, "stdout": {"true"}, "stderr": {"true"}}
	u, _ := url.Parse(base + "/p?" + q.Encode())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var stdins []*io.PipeWriter
	end := func() {
		cancel()
		for _, w := range stdins {
			_ = w.Close()
		}
		wg.Wait()
	}
	for range n {
		exec := executorFor(t, cfg, protocol, u)
		in, stdin := io.Pipe()
		stdins = append(stdins, stdin)
		echoed := make(chan error, 2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: in, Stdout: &firstWrite{c: echoed}, Stderr: io.Discard})
			if err == nil {
				err = errors.New("ended")
			}
			echoed <- err // room for it: the first write tells once
		}()
		go func() { _, _ = stdin.Write([]byte("x")) }()
		if err := <-echoed; err != nil {
			end()
			return nil, fmt.Errorf("session %d: %w", len(stdins), err)
		}
	}
	return end, nil
}

// firstWrite tells on c when the first byte is written.
type firstWrite struct {
	once sync.Once
	c    chan<- error
}

func (w *firstWrite) Write(p []byte) (int, error) {
	if len(p) > 0 {
		w.once.Do(func() { w.c <- nil })
	}
	return len(p), nil
}
