// Package idleexec measures what an idle exec session costs in memory as users open it: the stock
// kubectl's `exec -i ... cat`, held open and quiet, through kube-apiserver to exec-proxy (the route)
// and on kube-apiserver's own pods/exec, paired round by round. The figure is each server's live heap
// and goroutine stacks after a forced collection (Go's own gauges: go_memstats_alloc_bytes, which
// after a collection is what it kept, and go_memstats_stack_inuse_bytes), with the sessions held
// less before them, per session; for exec-proxy also its heap spans in use (go_memstats_heap_inuse_bytes:
// what the live objects occupy with the free room beside them) and goroutines. Before each case,
// both servers' goroutines have stopped falling, so that the last case's ending is not counted.
package idleexec

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/exec-proxy/exec-proxy/bench/internal/execpath"
	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

// Options say where the cluster is and how much to hold.
type Options struct {
	Cluster    string // the local cluster's directory
	KubectlDir string // kubectl.1.28 and kubectl.1.33
	Sessions   int    // held per measurement
	Rounds     int    // paired rounds after the warm-up
	Logf       func(format string, args ...any)
}

// Case is one kubectl on one path.
type Case struct {
	Kubectl  string `json:"kubectl"`
	Protocol string `json:"protocol"`
	Path     string `json:"path"` // route or kube-apiserver
	// Per round, KiB per session: exec-proxy's (0 on kube-apiserver's path) and kube-apiserver's.
	ExecProxyKiB []float64      `json:"execProxyKiBPerSession"`
	APIServerKiB []float64      `json:"kubeAPIServerKiBPerSession"`
	ExecProxy    stats.Interval `json:"execProxy"`
	APIServer    stats.Interval `json:"kubeAPIServer"`
	// exec-proxy's heap spans in use (with what is free in them) plus stacks, and goroutines, per
	// session and round.
	ExecProxyInUseKiB   []float64      `json:"execProxyInUseKiBPerSession,omitempty"`
	ExecProxyGoroutines []float64      `json:"execProxyGoroutinesPerSession,omitempty"`
	ExecProxyInUse      stats.Interval `json:"execProxyInUse"`
	// Active: the same sessions while each echoes a line of activeLine bytes every activeEvery,
	// per round: exec-proxy's and kube-apiserver's live KiB per session over the idle baseline.
	ExecProxyActiveKiB []float64      `json:"execProxyActiveKiBPerSession,omitempty"`
	APIServerActiveKiB []float64      `json:"kubeAPIServerActiveKiBPerSession,omitempty"`
	ExecProxyActive    stats.Interval `json:"execProxyActive"`
	APIServerActive    stats.Interval `json:"kubeAPIServerActive"`
	// Route only: per round, (exec-proxy + kube-apiserver on the route) ÷ kube-apiserver on its own
	// path with the same kubectl; and the ratio of the medians beside it.
	VsAPIServerRounds []float64       `json:"vsKubeAPIServerRounds,omitempty"`
	VsAPIServer       *stats.Interval `json:"vsKubeAPIServer,omitempty"`
	RatioOfMedians    float64         `json:"ratioOfMedians,omitempty"`
}

// Result is every case of the part.
type Result struct {
	Sessions int    `json:"sessions"`
	Rounds   int    `json:"rounds"`
	Cases    []Case `json:"cases"`
}

var kubectls = []struct{ version, protocol string }{{"1.28", "SPDY"}, {"1.33", "WebSocket"}}

// server is one Go server whose gauges are read: exec-proxy straight, or kube-apiserver.
type server struct {
	url    string
	client *http.Client
}

// Run measures every kubectl on both paths, Rounds times after a discarded warm-up, in an order
// turned each round so that drift is shared.
func Run(ctx context.Context, o Options) (*Result, error) {
	pki := filepath.Join(o.Cluster, "pki")
	ep, err := newServer("https://127.0.0.1:18443", pki, "user-admin")
	if err != nil {
		return nil, err
	}
	api, err := newServer("https://127.0.0.1:16443", pki, "cluster-admin")
	if err != nil {
		return nil, err
	}
	res := &Result{Sessions: o.Sessions, Rounds: o.Rounds}
	for _, k := range kubectls {
		for _, p := range []string{"route", "kube-apiserver"} {
			res.Cases = append(res.Cases, Case{Kubectl: "kubectl." + k.version, Protocol: k.protocol, Path: p})
		}
	}
	for round := 0; round <= o.Rounds; round++ {
		for _, i := range stats.TurnedOrder(len(res.Cases), round) {
			c := &res.Cases[i]
			kubeconfig := execpath.AdminKubeconfig(o.Cluster, c.Path)
			got, err := hold(ctx, o, filepath.Join(o.KubectlDir, c.Kubectl), kubeconfig, ep, api)
			if err != nil {
				return nil, fmt.Errorf("%s on %s: %w", c.Kubectl, c.Path, err)
			}
			o.Logf("idle exec, round %d of %d%s: %s on %s: exec-proxy %.1f KiB live (%.1f in use, %.1f goroutines), kube-apiserver %.1f KiB live per session; active: exec-proxy %.1f, kube-apiserver %.1f",
				round, o.Rounds, map[bool]string{true: " (warm-up, discarded)"}[round == 0], c.Kubectl, c.Path, got.epLive, got.epInUse, got.epGoroutines, got.apiLive, got.epActive, got.apiActive)
			if round == 0 {
				continue
			}
			if c.Path == "kube-apiserver" {
				got = perSession{apiLive: got.apiLive, apiActive: got.apiActive} // exec-proxy is not on this path: what it holds meanwhile is noise
			}
			c.ExecProxyActiveKiB = append(c.ExecProxyActiveKiB, got.epActive)
			c.APIServerActiveKiB = append(c.APIServerActiveKiB, got.apiActive)
			c.ExecProxyKiB = append(c.ExecProxyKiB, got.epLive)
			c.ExecProxyInUseKiB = append(c.ExecProxyInUseKiB, got.epInUse)
			c.ExecProxyGoroutines = append(c.ExecProxyGoroutines, got.epGoroutines)
			c.APIServerKiB = append(c.APIServerKiB, got.apiLive)
		}
	}
	summarize(res)
	return res, nil
}

// summarize fills each case's intervals, and the route's ratios to kube-apiserver's own path.
func summarize(res *Result) {
	for i := range res.Cases {
		c := &res.Cases[i]
		c.ExecProxy = stats.BootstrapMedian(c.ExecProxyKiB, 10000)
		c.ExecProxyInUse = stats.BootstrapMedian(c.ExecProxyInUseKiB, 10000)
		c.APIServer = stats.BootstrapMedian(c.APIServerKiB, 10000)
		c.ExecProxyActive = stats.BootstrapMedian(c.ExecProxyActiveKiB, 10000)
		c.APIServerActive = stats.BootstrapMedian(c.APIServerActiveKiB, 10000)
	}
	for i := range res.Cases {
		c := &res.Cases[i]
		if c.Path != "route" {
			continue
		}
		for _, base := range res.Cases {
			if base.Path != "kube-apiserver" || base.Kubectl != c.Kubectl {
				continue
			}
			c.VsAPIServerRounds = nil
			for r := range c.ExecProxyKiB {
				if r < len(base.APIServerKiB) && base.APIServerKiB[r] > 0 {
					c.VsAPIServerRounds = append(c.VsAPIServerRounds, (c.ExecProxyKiB[r]+c.APIServerKiB[r])/base.APIServerKiB[r])
				}
			}
			iv := stats.BootstrapMedian(c.VsAPIServerRounds, 10000)
			c.VsAPIServer = &iv
			if base.APIServer.Median > 0 {
				c.RatioOfMedians = (c.ExecProxy.Median + c.APIServer.Median) / base.APIServer.Median
			}
		}
	}
}

// perSession is what one held session cost, in KiB (goroutines: a count).
type perSession struct{ epLive, epInUse, epGoroutines, apiLive, epActive, apiActive float64 }

// An active session echoes a line of activeLine bytes every activeEvery: about 200 KiB/s each, so
// that what is in flight (frames, buffers, the kubelet's answers) is held while it is measured,
// without the sessions' sum saturating the machine.
const (
	activeLine  = 4 << 10
	activeEvery = 20 * time.Millisecond
)

// hold opens o.Sessions idle sessions with kubectl, each seen to echo a line, measures both servers
// around them, and closes them.
func hold(ctx context.Context, o Options, kubectl, kubeconfig string, ep, api *server) (perSession, error) {
	// The last case's sessions are gone from exec-proxy, their end records written.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		active, err := ep.gauge("execproxy_sessions_active")
		if err != nil {
			return perSession{}, err
		}
		if active == 0 {
			break
		}
		if time.Now().After(deadline) {
			return perSession{}, fmt.Errorf("exec-proxy still holds %.0f sessions 30 s after the last case's ended", active)
		}
	}
	epBefore, err := ep.settled()
	if err != nil {
		return perSession{}, err
	}
	apiBefore, err := api.settled()
	if err != nil {
		return perSession{}, err
	}
	sessions := make([]*session, o.Sessions)
	defer func() {
		for _, s := range sessions {
			if s != nil {
				s.close()
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, o.Sessions)
	sem := make(chan struct{}, 8)
	for i := range sessions {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s, err := open(ctx, kubectl, kubeconfig)
			if err != nil {
				errs <- err
				return
			}
			sessions[i] = s
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return perSession{}, err
	}
	time.Sleep(2 * time.Second) // what setting up left behind becomes garbage
	epHeld, err := ep.inUse()
	if err != nil {
		return perSession{}, err
	}
	apiHeld, err := api.inUse()
	if err != nil {
		return perSession{}, err
	}
	n := float64(o.Sessions)
	kib := func(held, before float64) float64 { return (held - before) / 1024 / n }
	got := perSession{epLive: kib(epHeld.live, epBefore.live), epInUse: kib(epHeld.inUse, epBefore.inUse),
		epGoroutines: (epHeld.goroutines - epBefore.goroutines) / n, apiLive: kib(apiHeld.live, apiBefore.live)}

	// The same sessions, active.
	stop := make(chan struct{})
	var pumps sync.WaitGroup
	for _, s := range sessions {
		pumps.Add(1)
		go func() { defer pumps.Done(); s.pump(stop) }()
	}
	defer func() {
		close(stop)
		for _, s := range sessions {
			_ = s.stdin.Close() // a write blocked on a kubectl that stopped reading returns
		}
		pumps.Wait()
	}()
	time.Sleep(2 * time.Second)
	for _, s := range sessions {
		if s.echoed.Load() == 0 {
			return perSession{}, fmt.Errorf("a session echoed nothing of its active lines in 2 s")
		}
	}
	epActive, err := ep.inUse()
	if err != nil {
		return perSession{}, err
	}
	apiActive, err := api.inUse()
	if err != nil {
		return perSession{}, err
	}
	got.epActive, got.apiActive = kib(epActive.live, epBefore.live), kib(apiActive.live, apiBefore.live)
	return got, nil
}

// pump writes a line every activeEvery until stop.
func (s *session) pump(stop <-chan struct{}) {
	line := append(bytes.Repeat([]byte("a"), activeLine-1), '\n')
	t := time.NewTicker(activeEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-s.done:
			return
		case <-t.C:
			if _, err := s.stdin.Write(line); err != nil {
				return
			}
		}
	}
}

// session is one kubectl exec -i ... cat, held open.
type session struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	done   chan struct{}
	echoed atomic.Int64 // bytes cat wrote back after the ready line
}

func open(ctx context.Context, kubectl, kubeconfig string) (*session, error) {
	cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "-n", "demo", "exec", "-i", "demo", "-c", "main", "--", "cat")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &session{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	echoed := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("echoed %q", line)
		}
		echoed <- err
		_, _ = io.Copy(counter{&s.echoed}, stdout)
		_ = cmd.Wait()
		close(s.done)
	}()
	if _, err := stdin.Write([]byte("ready\n")); err != nil {
		s.close()
		return nil, err
	}
	select {
	case err = <-echoed:
	case <-time.After(60 * time.Second):
		err = fmt.Errorf("no echo in 60 s")
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("%s exec: %w: %s", filepath.Base(kubectl), err, strings.TrimSpace(stderr.String()))
	}
	return s, nil
}

// counter counts what is written to it.
type counter struct{ n *atomic.Int64 }

func (c counter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

// close ends the session as its user would (stdin closed, cat exits), or kills kubectl.
func (s *session) close() {
	_ = s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func newServer(url, pki, identity string) (*server, error) {
	ca, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, identity+".crt"), filepath.Join(pki, identity+".key"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &server{url: url, client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}}, nil
}

// memory is a server's Go figures after a forced collection, in bytes (goroutines: a count).
type memory struct{ live, inUse, goroutines float64 }

// inUse collects the server's garbage (a heap profile with gc=1) and returns its live heap plus
// goroutine stacks, its heap spans in use plus stacks, and its goroutines.
func (s *server) inUse() (memory, error) {
	if _, err := s.get("/debug/pprof/heap?gc=1"); err != nil {
		return memory{}, err
	}
	body, err := s.get("/metrics")
	if err != nil {
		return memory{}, err
	}
	v := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) != 2:
		case f[0] == "go_memstats_alloc_bytes", f[0] == "go_memstats_heap_inuse_bytes", f[0] == "go_memstats_stack_inuse_bytes", f[0] == "go_goroutines":
			x, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return memory{}, err
			}
			v[f[0]] = x
		}
	}
	if len(v) != 4 {
		return memory{}, fmt.Errorf("%s/metrics lacks one of go_memstats_alloc_bytes, go_memstats_heap_inuse_bytes, go_memstats_stack_inuse_bytes, go_goroutines", s.url)
	}
	stacks := v["go_memstats_stack_inuse_bytes"]
	return memory{live: v["go_memstats_alloc_bytes"] + stacks, inUse: v["go_memstats_heap_inuse_bytes"] + stacks, goroutines: v["go_goroutines"]}, nil
}

// settled is inUse once the goroutines no longer fall (what ended last is gone), at most 30 s.
func (s *server) settled() (memory, error) {
	last, err := s.inUse()
	for deadline := time.Now().Add(30 * time.Second); err == nil && time.Now().Before(deadline); {
		time.Sleep(time.Second)
		var m memory
		if m, err = s.inUse(); err == nil && m.goroutines >= last.goroutines {
			return m, nil
		}
		last = m
	}
	return last, err
}

// gauge is the sum of the samples of a metric family on /metrics (0 when it has none).
func (s *server) gauge(name string) (float64, error) {
	body, err := s.get("/metrics")
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && (f[0] == name || strings.HasPrefix(f[0], name+"{")) {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return 0, err
			}
			sum += v
		}
	}
	return sum, nil
}

func (s *server) get(path string) ([]byte, error) {
	resp, err := s.client.Get(s.url + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s%s: HTTP %d: %s", s.url, path, resp.StatusCode, body)
	}
	return body, err
}

// WriteTable writes the part's table: per case the median KiB per session with its 95% interval,
// and the route's ratio to kube-apiserver's own path.
func WriteTable(buf *bytes.Buffer, r *Result) {
	fmt.Fprintf(buf, "\nIdle exec sessions (kubectl exec -i ... cat, %d held, %d paired rounds after a warm-up; live heap and stacks after a forced GC, KiB per session, median [95%% interval]; active: the same sessions each echoing a %d-byte line every %v):\n", r.Sessions, r.Rounds, activeLine, activeEvery)
	fmt.Fprintf(buf, "%-14s %-10s %-15s %-24s %-24s %-24s %-26s %-26s %s\n", "KUBECTL", "PROTOCOL", "PATH", "EXEC-PROXY", "(SPANS IN USE)", "KUBE-APISERVER", "ACTIVE: EXEC-PROXY", "ACTIVE: KUBE-APISERVER", "ROUTE ÷ KUBE-APISERVER'S PATH (paired; ratio of medians)")
	iv := func(i stats.Interval) string { return fmt.Sprintf("%.1f [%.1f, %.1f]", i.Median, i.Low, i.High) }
	for _, c := range r.Cases {
		ep, spans, epActive, ratio := "-", "-", "-", ""
		if c.Path == "route" {
			ep, spans, epActive = iv(c.ExecProxy), iv(c.ExecProxyInUse), iv(c.ExecProxyActive)
			if c.VsAPIServer != nil {
				ratio = fmt.Sprintf("%.2f× [%.2f, %.2f]; %.2f×", c.VsAPIServer.Median, c.VsAPIServer.Low, c.VsAPIServer.High, c.RatioOfMedians)
			}
		}
		fmt.Fprintf(buf, "%-14s %-10s %-15s %-24s %-24s %-24s %-26s %-26s %s\n", c.Kubectl, c.Protocol, c.Path, ep, spans, iv(c.APIServer), epActive, iv(c.APIServerActive), ratio)
	}
}
