//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
)

// loadSettings are the load check's bounds, from the environment: LOAD_SESSIONS port-forward
// sessions and LOAD_EXEC exec sessions at once, each offering twice LOAD_RATE for LOAD_DURATION
// while throttled to LOAD_RATE bytes per second per session (so each runs about twice as long).
type loadSettings struct {
	sessions, execs int
	duration        time.Duration
	rate            int64
	// ramp spreads the session starts: 1,000 TLS handshakes and kubelet streams at one instant
	// time out on a two-core machine before any byte is sent, which says nothing of exec-proxy.
	ramp time.Duration
}

func loadFromEnv(t *testing.T) loadSettings {
	s := loadSettings{sessions: 1000, execs: 50, duration: 30 * time.Second, rate: 8 << 10, ramp: 20 * time.Second}
	for name, dst := range map[string]*int{"LOAD_SESSIONS": &s.sessions, "LOAD_EXEC": &s.execs} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s=%q: %v", name, v, err)
			}
			*dst = n
		}
	}
	if v := os.Getenv("LOAD_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("LOAD_DURATION=%q: %v", v, err)
		}
		s.duration = d
	}
	if v := os.Getenv("LOAD_RATE"); v != "" {
		r, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("LOAD_RATE=%q: %v", v, err)
		}
		s.rate = r
	}
	return s
}

const (
	echoPod  = "load-echo"
	echoPort = 7000
	// maxLoadRSSKiB bounds exec-proxy's resident memory under the load.
	maxLoadRSSKiB = 1 << 20
)

// TestReliabilityLoad: many concurrent sessions, each sending a pseudo-random payload of its own
// that an echo server in the pod sends back, every byte compared. The throttle holds, memory
// stays bounded, and nothing is left once they end. The sessions go straight to exec-proxy's
// port: through kube-apiserver, each would hold one of its max-in-flight seats.
func TestReliabilityLoad(t *testing.T) {
	cfg := loadFromEnv(t)
	runCheck(t, "load", false, func(p *probe) { checkLoad(p, cfg) })
}

func checkLoad(p *probe, cfg loadSettings) {
	t := p.t
	startEchoPod(t)
	restartExecProxy(t, "--session-start-qps=0", "--max-sessions=0", "--max-sessions-per-user=0", "--max-sessions-per-node=0",
		fmt.Sprintf("--max-bytes-per-sec-per-session=%d", cfg.rate))
	before := execProxyFigures(t)
	peak := watchRSS()
	results := make(chan echoResult, cfg.sessions+cfg.execs)
	var wg sync.WaitGroup
	n := cfg.sessions + cfg.execs
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Execs and port-forwards interleaved, all running together once the ramp is over.
			time.Sleep(time.Duration(int64(cfg.ramp) * int64((i*7919)%n) / int64(n)))
			if i < cfg.sessions {
				results <- portForwardEcho(uint64(i), cfg)
			} else {
				results <- execEcho(uint64(i), cfg)
			}
		}()
	}
	wg.Wait()
	close(results)
	peakKiB := peak()
	var rates []float64
	whole := 0
	errs := map[string]int{}
	for r := range results {
		p.count(1, 0, b2i(r.err == nil || r.checked > 0), r.checked)
		if r.err != nil {
			errs[r.err.Error()]++
			continue
		}
		whole++
		// The bucket starts full: what passed at the limit is what came back beyond its burst.
		// A session the loaded machine kept from sending much says nothing of the limit.
		if burst := limiterBurst(cfg.rate); r.checked >= 4*burst {
			rates = append(rates, float64(r.checked-burst)/r.elapsed.Seconds()/float64(cfg.rate))
		}
	}
	for _, e := range slices.Sorted(maps.Keys(errs)) {
		p.finding("%d sessions: %s", errs[e], e)
	}
	p.figure("%d of %d sessions echoed whole, every byte compared", whole, cfg.sessions+cfg.execs)
	slices.Sort(rates)
	if len(rates) > 0 {
		p.figure("%d sessions' rate after the burst ÷ limit: min %.3f median %.3f max %.3f",
			len(rates), rates[0], rates[len(rates)/2], rates[len(rates)-1])
		// A token bucket cannot be beaten, however fast the machine: only the upper bound is a check.
		if rates[len(rates)-1] > 1.1 {
			p.finding("a session ran at %.2f× its limit of %d B/s", rates[len(rates)-1], cfg.rate)
		}
	}
	p.figure("exec-proxy RSS %d → peak %d KiB (%.0f KiB per session)", before.rssKiB, peakKiB,
		float64(peakKiB-before.rssKiB)/float64(cfg.sessions+cfg.execs))
	if peakKiB > maxLoadRSSKiB {
		p.finding("exec-proxy's RSS reached %d KiB, over the bound of %d KiB", peakKiB, maxLoadRSSKiB)
	}
	p.leakCheck(before)
}

// echoResult is one session's outcome: bytes sent and compared, and how long the echo took.
type echoResult struct {
	checked int64
	elapsed time.Duration
	err     error
}

// limiterBurst is the bucket of a session's bandwidth limit: a tenth of a second, at least 32 KiB.
func limiterBurst(rate int64) int64 { return max(rate/10, 32<<10) }

// payload is session i's pseudo-random byte stream: the same seed makes the same bytes on both sides.
type payload struct{ r *rand.ChaCha8 }

func newPayload(i uint64) payload {
	var seed [32]byte
	copy(seed[:], fmt.Sprintf("exec-proxy load session %d", i))
	return payload{rand.NewChaCha8(seed)}
}

func (p payload) Read(b []byte) (int, error) { return p.r.Read(b) }

// echo sends session i's payload on w for d at offer bytes per second, and compares all that
// comes back on r until every byte sent is back. The payload is paced: unpaced, the kernel's
// socket buffers would take megabytes at once, which a throttled session takes minutes to pass.
// The caller closes r's connection once echo returns.
func echo(i uint64, d time.Duration, offer int64, w io.Writer, r io.Reader) echoResult {
	sentAll := make(chan int64, 1)
	begin := time.Now()
	go func() {
		buf := make([]byte, 4<<10)
		src := newPayload(i)
		var sent int64
		for time.Since(begin) < d {
			_, _ = src.Read(buf)
			n, err := w.Write(buf)
			sent += int64(n)
			if err != nil {
				break // the reader will find the echo short
			}
			if ahead := time.Duration(float64(sent)/float64(offer)*float64(time.Second)) - time.Since(begin); ahead > 0 {
				time.Sleep(ahead)
			}
		}
		sentAll <- sent
	}()
	type chunk struct {
		b   []byte
		err error
	}
	reads, done := make(chan chunk), make(chan struct{})
	defer close(done)
	go func() {
		for {
			buf := make([]byte, 32<<10)
			n, err := r.Read(buf)
			select {
			case reads <- chunk{buf[:n], err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	want, exp := newPayload(i), make([]byte, 32<<10)
	total, checked := int64(-1), int64(0)
	var stalled <-chan time.Time // runs once everything is sent
	for total < 0 || checked < total {
		select {
		case c := <-reads:
			_, _ = want.Read(exp[:len(c.b)])
			for k := range c.b {
				if c.b[k] != exp[k] {
					return echoResult{checked: checked, err: fmt.Errorf("byte %d came back corrupted", checked+int64(k))}
				}
			}
			checked += int64(len(c.b))
			if c.err != nil && (total < 0 || checked < total) {
				return echoResult{checked: checked, err: fmt.Errorf("lost bytes: %d came back before %v", checked, c.err)}
			}
		case total = <-sentAll:
			stalled = time.After(max(time.Minute, 3*d))
		case <-stalled:
			return echoResult{checked: checked, err: fmt.Errorf("the echo stalled: sent %d, %d came back", total, checked)}
		}
	}
	return echoResult{checked: checked, elapsed: time.Since(begin)}
}

// portForwardEcho is one port-forward session to the echo server, its payload on one stream.
func portForwardEcho(i uint64, cfg loadSettings) echoResult {
	rt, upgrader, err := spdy.RoundTripperFor(straightConfig("admin"))
	if err != nil {
		return echoResult{err: err}
	}
	u, _ := url.Parse("https://" + execProxyAddr + kubeRoute + "/api/v1/namespaces/demo/pods/" + echoPod + "/portforward")
	conn, _, err := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u).Dial(portforward.PortForwardProtocolV1Name)
	if err != nil {
		return echoResult{err: fmt.Errorf("dialing: %w", err)}
	}
	defer conn.Close()
	h := http.Header{}
	h.Set(corev1.StreamType, corev1.StreamTypeError)
	h.Set(corev1.PortHeader, strconv.Itoa(echoPort))
	h.Set(corev1.PortForwardRequestIDHeader, "0")
	errStream, err := conn.CreateStream(h)
	if err != nil {
		return echoResult{err: fmt.Errorf("error stream: %w", err)}
	}
	remoteErr := make(chan string, 1)
	go func() {
		msg, _ := io.ReadAll(errStream)
		remoteErr <- string(msg)
	}()
	h.Set(corev1.StreamType, corev1.StreamTypeData)
	data, err := conn.CreateStream(h)
	if err != nil {
		return echoResult{err: fmt.Errorf("data stream: %w", err)}
	}
	res := echo(i, cfg.duration, 2*cfg.rate, data, data)
	if res.err != nil {
		_ = conn.Close()
		if msg := <-remoteErr; msg != "" {
			res.err = fmt.Errorf("%w; the kubelet said: %s", res.err, msg)
		}
	}
	return res
}

// execEcho is one exec of cat with the payload on stdin, compared on stdout.
func execEcho(i uint64, cfg loadSettings) echoResult {
	u, _ := url.Parse("https://" + execProxyAddr + "/apis/execproxy.dev/v1alpha1/namespaces/demo/pods/" + echoPod +
		"/exec?container=echo&command=cat&stdin=true&stdout=true")
	exec, err := remotecommand.NewSPDYExecutor(straightConfig("admin"), http.MethodPost, u)
	if i%2 == 1 {
		exec, err = remotecommand.NewWebSocketExecutor(straightConfig("admin"), http.MethodGet, u.String())
	}
	if err != nil {
		return echoResult{err: err}
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streamErr := make(chan error, 1)
	go func() {
		err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: inR, Stdout: outW})
		outW.CloseWithError(err)
		streamErr <- err
	}()
	res := echo(i, cfg.duration, 2*cfg.rate, inW, outR)
	_ = inW.Close() // cat exits, and the session with it
	if res.err != nil {
		cancel()
	}
	select {
	case err := <-streamErr:
		if err != nil && res.err == nil {
			res.err = fmt.Errorf("exec: %w", err)
		}
	case <-time.After(time.Minute):
		cancel()
		if res.err == nil {
			res.err = errors.New("cat did not end within a minute of its stdin closing")
		}
	}
	return res
}

// startEchoPod runs an echo server (testdata/echoserver, mounted from the host) on node1 for the
// test; the exec sessions echo with cat in the same container.
func startEchoPod(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "echoserver"), "./test/e2e/testdata/echoserver")
	build.Dir, build.Env = repoRoot(), append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the echo server: %v\n%s", err, out)
	}
	runBusyboxPod(t, echoPod, fmt.Sprintf("  volumes: [{name: bin, hostPath: {path: %q, type: Directory}}]\n", dir),
		fmt.Sprintf("    name: echo\n    command: [/echo/echoserver, -listen, \":%d\"]\n"+
			"    volumeMounts: [{name: bin, mountPath: /echo, readOnly: true}]\n", echoPort))
}

// watchRSS samples exec-proxy's RSS every 200 ms until the returned function is called, which
// gives the peak.
func watchRSS() func() int64 {
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if kib, err := readRSS(); err == nil && kib > peak.Load() {
				peak.Store(kib)
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() int64 { close(stop); <-done; return peak.Load() }
}
