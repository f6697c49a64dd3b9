package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/exec-proxy/exec-proxy/bench/internal/execpath"
	"github.com/exec-proxy/exec-proxy/bench/internal/proc"
	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

const execProxyURL = "https://127.0.0.1:18443"

// Idle is what holding sessions open costs one exec-proxy.
type Idle struct {
	Asked          int     `json:"asked"`
	Reached        int     `json:"reached"`
	RSSKiBBefore   int64   `json:"rssKiBBefore"`
	RSSKiBHeld     int64   `json:"rssKiBHeld"`
	KiBPerSession  float64 `json:"kibPerSession"`
	GoroutinesIdle int     `json:"goroutinesBefore"`
	GoroutinesHeld int     `json:"goroutinesHeld"`
	PerSession     float64 `json:"goroutinesPerSession"`
	GoroutinesLeft int     `json:"goroutinesAfterClose"`
	// Settled: after a collection, once the runtime has returned to the system what it freed (it
	// does so in the background, a little at a time), as it stands while sessions are held for long.
	RSSKiBSettled        int64   `json:"rssKiBSettled"`
	KiBPerSessionSettled float64 `json:"kibPerSessionSettled"`
	SettleSeconds        int     `json:"settleSeconds"`
	// Where a session's memory is after a collection, from Go's own figures: goroutine stacks, and
	// the heap in use.
	StackKiBPerSession float64 `json:"stackKiBPerSession"`
	HeapKiBPerSession  float64 `json:"heapKiBPerSession"`
	FirstError         string  `json:"firstError,omitempty"`
	// The figures above are the median run's; these, every run's.
	Runs                     int         `json:"runs"`
	KiBPerSessionRuns        stats.Stats `json:"kibPerSessionRuns"`
	KiBPerSessionSettledRuns stats.Stats `json:"kibPerSessionSettledRuns"`
}

// idleRuns holds the idle sessions o.idleRuns times, each on a freshly started exec-proxy (what
// one run leaves in the heap would flatter the next), and returns the median run with the spread
// of all. The profiles are the first run's.
func idleRuns(ctx context.Context, o options, route execpath.Path) (Idle, error) {
	var runs []Idle
	var held, settled []float64
	for i := range o.idleRuns {
		logf("idle sessions, run %d of %d: %d port-forwards held open straight to a fresh exec-proxy", i+1, o.idleRuns, o.idle)
		if err := restartExecProxy(ctx, o.cluster, route, unlimited+" --session-audit-log-path= --recording-dir= --profiling", nil); err != nil {
			return Idle{}, err
		}
		profiles := o.profiles
		if i > 0 {
			profiles = ""
		}
		r, err := idleSessions(ctx, o.cluster, profiles, o.idle)
		if err != nil {
			return r, err
		}
		logf("idle sessions, run %d: %d held, %.1f KiB per session (%.1f settled, after %d s)", i+1, r.Reached, r.KiBPerSession, r.KiBPerSessionSettled, r.SettleSeconds)
		runs = append(runs, r)
		held, settled = append(held, r.KiBPerSession), append(settled, r.KiBPerSessionSettled)
	}
	sort.Slice(runs, func(a, b int) bool { return runs[a].KiBPerSessionSettled < runs[b].KiBPerSessionSettled })
	med := runs[len(runs)/2]
	med.Runs, med.KiBPerSessionRuns, med.KiBPerSessionSettledRuns = len(runs), stats.Summarize(held), stats.Summarize(settled)
	return med, nil
}

// adminStraight is admin's client certificate against exec-proxy itself: kube-apiserver, which
// holds a priority-and-fairness seat per aggregated request, is left out of the count.
func adminStraight(cluster string) *rest.Config {
	pki := filepath.Join(cluster, "pki")
	return &rest.Config{Host: execProxyURL, QPS: -1, TLSClientConfig: rest.TLSClientConfig{
		CAFile: filepath.Join(pki, "ca.crt"), CertFile: filepath.Join(pki, "user-admin.crt"), KeyFile: filepath.Join(pki, "user-admin.key"),
	}}
}

// idleSessions opens n port-forward sessions (no streams, so no process in the container) straight
// to exec-proxy, measures its RSS and goroutines, then closes them.
func idleSessions(ctx context.Context, cluster, profiles string, n int) (Idle, error) {
	res := Idle{Asked: n}
	cfg := adminStraight(cluster)
	var err error
	before, err := goMetrics(cfg)
	if err != nil {
		return res, err
	}
	res.GoroutinesIdle = int(before["go_goroutines"])
	if res.RSSKiBBefore, err = proc.RSSKiB(cluster, "exec-proxy"); err != nil {
		return res, err
	}
	u, _ := url.Parse(execProxyURL + execpath.KubeRoute + "/api/v1/namespaces/" + execpath.Namespace + "/pods/" + execpath.Pod + "/portforward")
	conns := make(chan httpstream.Connection, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			rt, upgrader, err := spdy.RoundTripperFor(cfg)
			if err != nil {
				errs <- err
				return
			}
			conn, _, err := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u).Dial(portforward.PortForwardProtocolV1Name)
			if err != nil {
				errs <- err
				return
			}
			conns <- conn
		}()
	}
	wg.Wait()
	close(conns)
	close(errs)
	if e, ok := <-errs; ok {
		res.FirstError = e.Error()
	}
	time.Sleep(2 * time.Second) // let the sessions settle
	res.Reached = len(conns)
	res.RSSKiBHeld, _ = proc.RSSKiB(cluster, "exec-proxy")
	// Sessions held for long see the runtime's collections (one at least every 2 minutes): the
	// second figure is after one, asked for by the heap profile's gc=1.
	if err := gcAndProfile(cfg, profiles); err != nil {
		logf("%v", err)
	}
	res.RSSKiBSettled, res.SettleSeconds = settledRSS(cluster)
	held, _ := goMetrics(cfg)
	res.GoroutinesHeld = int(held["go_goroutines"])
	if res.Reached > 0 {
		perSession := func(kib int64) float64 { return float64(kib-res.RSSKiBBefore) / float64(res.Reached) }
		res.KiBPerSession, res.KiBPerSessionSettled = perSession(res.RSSKiBHeld), perSession(res.RSSKiBSettled)
		res.PerSession = float64(res.GoroutinesHeld-res.GoroutinesIdle) / float64(res.Reached)
		metric := func(name string) float64 { return (held[name] - before[name]) / 1024 / float64(res.Reached) }
		res.StackKiBPerSession = metric("go_memstats_stack_inuse_bytes")
		res.HeapKiBPerSession = metric("go_memstats_heap_inuse_bytes")
	}
	for c := range conns {
		_ = c.Close()
	}
	deadline := time.Now().Add(30 * time.Second)
	for res.GoroutinesLeft, _ = goroutines(cfg); res.GoroutinesLeft > res.GoroutinesIdle+20 && time.Now().Before(deadline); res.GoroutinesLeft, _ = goroutines(cfg) {
		time.Sleep(500 * time.Millisecond)
	}
	return res, ctx.Err()
}

// settledRSS waits until exec-proxy's RSS no longer falls (by under 0.5% in 3 s; at most a
// minute) and returns it, with the seconds it took.
func settledRSS(cluster string) (int64, int) {
	var rss []int64
	for i := 0; i < 60; i++ {
		time.Sleep(time.Second)
		kib, _ := proc.RSSKiB(cluster, "exec-proxy")
		rss = append(rss, kib)
		if n := len(rss); n > 3 && float64(rss[n-4]-kib) < 0.005*float64(rss[n-4]) {
			return kib, n
		}
	}
	return rss[len(rss)-1], len(rss)
}

// gcAndProfile has exec-proxy collect its garbage, by asking for a heap profile with gc=1, and
// keeps that profile and a goroutine one in profiles (when set).
func gcAndProfile(cfg *rest.Config, profiles string) error {
	if profiles == "" {
		_, err := straightGet(cfg, "/debug/pprof/heap?gc=1", time.Minute)
		return err
	}
	for _, p := range []string{"heap?gc=1", "goroutine"} {
		name := strings.TrimSuffix(p, "?gc=1")
		if err := saveProfile(cfg, p, filepath.Join(profiles, "idle-"+name+".pb.gz"), time.Minute); err != nil {
			return err
		}
	}
	// The runtime's own account (runtime.MemStats: what the heap holds, has freed, returned).
	return saveProfile(cfg, "heap?debug=1", filepath.Join(profiles, "idle-memstats.txt"), time.Minute)
}

// goroutines reads go_goroutines from exec-proxy's /metrics.
func goroutines(cfg *rest.Config) (int, error) {
	m, err := goMetrics(cfg)
	return int(m["go_goroutines"]), err
}

// goMetrics reads the Go runtime's gauges (go_*) from exec-proxy's /metrics.
func goMetrics(cfg *rest.Config) (map[string]float64, error) {
	body, err := straightGet(cfg, "/metrics", 10*time.Second)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 2 && strings.HasPrefix(f[0], "go_") {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				out[f[0]] = v
			}
		}
	}
	if _, ok := out["go_goroutines"]; !ok {
		return nil, fmt.Errorf("no go_goroutines in exec-proxy's /metrics")
	}
	return out, nil
}

// straightGet reads path from exec-proxy itself as admin.
func straightGet(cfg *rest.Config, path string, timeout time.Duration) ([]byte, error) {
	ca, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(cfg.Host + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, body)
	}
	return body, err
}

// saveProfile writes exec-proxy's pprof profile (e.g. "heap", "profile?seconds=10") to file.
func saveProfile(cfg *rest.Config, profile, file string, timeout time.Duration) error {
	body, err := straightGet(cfg, "/debug/pprof/"+profile, timeout)
	if err != nil {
		return fmt.Errorf("profile %s: %w", profile, err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	if strings.HasSuffix(file, ".txt") {
		logf("profile: %s (text)", file)
	} else {
		logf("profile: %s (go tool pprof -top %s)", file, file)
	}
	return os.WriteFile(file, body, 0o644)
}
