// Package idle measures what holding many idle port-forward sessions costs one exec-proxy: its
// memory and goroutines per session, its CPU and its collector's CPU over a quiet window while they
// are held, and whether every held session still reaches the pod afterwards. The sessions go
// straight to exec-proxy (admin's client certificate): kube-apiserver, which holds a priority-and-
// fairness seat per aggregated request, is left out of the count.
package idle

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"

	"github.com/exec-proxy/exec-proxy/bench/internal/proc"
	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

// Goals of issue 28 for the idle sessions, as shares of one core.
const (
	CoreGoal   = 0.02
	GCCoreGoal = 0.01
)

// Options say where exec-proxy is, how many sessions to hold and how to reach it.
type Options struct {
	Cluster  string        // the local cluster's directory (its run/*.pid files)
	Profiles string        // where the first run's heap and goroutine profiles go (empty: none)
	Sessions int           // held per run
	Runs     int           // each on a freshly started exec-proxy
	Quiet    time.Duration // the window over which CPU is measured while the sessions are held
	// PortForward is the port-forward URL of the demo pod on exec-proxy; Port, what the pod serves.
	PortForward string
	Port        int
	Config      *rest.Config // admin straight to exec-proxy
	// Restart starts a fresh exec-proxy with the caps off and /debug/pprof on.
	Restart func(ctx context.Context) error
	// Get reads a path of exec-proxy's (/metrics, /debug/pprof/...) as admin.
	Get  func(path string, timeout time.Duration) ([]byte, error)
	Logf func(format string, args ...any)
	// Baselines hold the same count in each run, in an order turned by run, each for Quiet.
	Baselines []Baseline
	// EmptyWindow is how long each path's process is watched with no session held, before.
	EmptyWindow time.Duration
	// Settle is how long each path's sessions are held before its window starts, and how long
	// after they are closed the next path's are opened.
	Settle time.Duration
}

// execProxyCPU is exec-proxy's CPU seconds so far.
func (o Options) execProxyCPU() (float64, error) { return proc.CPUSeconds(o.Cluster, "exec-proxy") }

// Memory is what the held sessions cost in memory and goroutines.
type Memory struct {
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
}

// Run is one run: the sessions held on one fresh exec-proxy.
type Run struct {
	Asked      int    `json:"asked"`
	Reached    int    `json:"reached"`
	FirstError string `json:"firstError,omitempty"`
	Memory
	Quiet  Quiet  `json:"quiet"`
	Usable Usable `json:"usable"`
	Limits Limits `json:"openFiles"`
	// Baselines are the same count held on the other paths in this run.
	Baselines []BaselineRun `json:"baselines,omitempty"`
}

// Result is the median run (by settled KiB per session) with every run's figures.
type Result struct {
	Run
	Runs                     int         `json:"runs"`
	KiBPerSessionRuns        stats.Stats `json:"kibPerSessionRuns"`
	KiBPerSessionSettledRuns stats.Stats `json:"kibPerSessionSettledRuns"`
	// Over the runs: exec-proxy's CPU and its collector's as shares of one core while the sessions
	// were held quiet (GC: the runs whose window saw a collection), and usable ÷ asked.
	CoreShare   stats.Interval `json:"coreShare"`
	GCCoreShare stats.Interval `json:"gcCoreShare"`
	GCRuns      int            `json:"gcRuns"`
	UsableShare stats.Stats    `json:"usableShare"`
	// PingMicros is exec-proxy's CPU per ping round trip over the runs; Compared, each baseline's
	// beside it.
	PingMicros     stats.Interval `json:"pingMicros"`
	EmptyCoreShare stats.Interval `json:"emptyCoreShare"` // exec-proxy's with none held
	Compared       []Comparison   `json:"compared,omitempty"`
	// Goals: CPU < 2% of a core, GC < 1%, all still usable.
	CPUVerdict    string `json:"cpuVerdict"`
	GCVerdict     string `json:"gcVerdict"`
	UsableVerdict string `json:"usableVerdict"`
	PerRun        []Run  `json:"perRun"`
}

// Measure holds the idle sessions o.Runs times, each on a freshly started exec-proxy (what one run
// leaves in the heap would flatter the next), and returns the median run with every run's figures.
// The profiles are the first run's.
func Measure(ctx context.Context, o Options) (*Result, error) {
	benchFiles, err := raiseOpenFiles()
	if err != nil {
		return nil, err
	}
	if need := uint64(o.Sessions) + 256; benchFiles < need {
		o.Logf("idle sessions: the bench may open %d files, under the %d its sessions need (raise the hard limit: ulimit -Hn)", benchFiles, need)
	}
	var runs []Run
	for i := range o.Runs {
		var r Run
		var baselines []BaselineRun
		for _, k := range stats.TurnedOrder(1+len(o.Baselines), i) {
			if k > 0 {
				b, err := holdBaseline(ctx, o, o.Baselines[k-1])
				if err != nil {
					return nil, err
				}
				o.Logf("idle sessions, run %d: %d held on %s; quiet %.0f s: its CPU %.2f%% of a core, %.1f µs per ping round trip",
					i+1, b.Reached, b.Name, b.Seconds, 100*b.CoreShare, pingMicros(b.CoreShare, b.EmptyCoreShare, b.Reached))
				baselines = append(baselines, b)
				settle(ctx, time.Now(), o.Settle) // the closed sessions' work stays out of the next path's window
				continue
			}
			o.Logf("idle sessions, run %d of %d: %d port-forwards held open straight to a fresh exec-proxy", i+1, o.Runs, o.Sessions)
			if err := o.Restart(ctx); err != nil {
				return nil, err
			}
			profiles := o.Profiles
			if i > 0 {
				profiles = ""
			}
			var err error
			if r, err = hold(ctx, o, profiles); err != nil {
				return nil, err
			}
			r.Limits.Bench = benchFiles
			settle(ctx, time.Now(), o.Settle) // its closed sessions' work stays out of the next path's window
			o.Logf("idle sessions, run %d: %d held, %.1f KiB per session (%.1f settled, after %d s); quiet %.0f s: CPU %.2f%% of a core (%.1f µs per ping round trip), GC %s; %d of %d usable",
				i+1, r.Reached, r.KiBPerSession, r.KiBPerSessionSettled, r.SettleSeconds, r.Quiet.Seconds, 100*r.Quiet.CoreShare, pingMicros(r.Quiet.CoreShare, r.Quiet.EmptyCoreShare, r.Reached), r.Quiet.gcText(), r.Usable.Usable, r.Asked)
		}
		r.Baselines = baselines
		runs = append(runs, r)
	}
	return summarize(runs), ctx.Err()
}

// summarize picks the median run and adds every run's spread, intervals and verdicts.
func summarize(runs []Run) *Result {
	res := &Result{Runs: len(runs), PerRun: runs}
	var held, settled, core, gc, usable, ping, empty []float64
	for _, r := range runs {
		held, settled = append(held, r.KiBPerSession), append(settled, r.KiBPerSessionSettled)
		empty = append(empty, r.Quiet.EmptyCoreShare)
		ping = append(ping, pingMicros(r.Quiet.CoreShare, r.Quiet.EmptyCoreShare, r.Reached))
		core = append(core, r.Quiet.CoreShare)
		if r.Quiet.GCCycles > 0 {
			gc = append(gc, r.Quiet.GCCoreShare)
		}
		usable = append(usable, r.Usable.share(r.Asked))
	}
	sorted := append([]Run(nil), runs...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a].KiBPerSessionSettled < sorted[b].KiBPerSessionSettled })
	if len(sorted) > 0 {
		res.Run = sorted[len(sorted)/2]
	}
	res.KiBPerSessionRuns, res.KiBPerSessionSettledRuns = stats.Summarize(held), stats.Summarize(settled)
	res.CoreShare, res.GCCoreShare, res.GCRuns = stats.BootstrapMedian(core, 10000), stats.BootstrapMedian(gc, 10000), len(gc)
	res.UsableShare = stats.Summarize(usable)
	res.PingMicros, res.Compared = stats.BootstrapMedian(ping, 10000), compare(runs)
	res.EmptyCoreShare = stats.BootstrapMedian(empty, 10000)
	res.CPUVerdict = stats.Verdict(res.CoreShare, len(core), CoreGoal, false)
	// A run whose window saw no collection shows nothing of the collector: the GC figure stands
	// only when every run's did.
	res.GCVerdict = stats.Verdict(res.GCCoreShare, len(gc), GCCoreGoal, false)
	if len(gc) < len(runs) && res.GCVerdict == stats.Met {
		res.GCVerdict = stats.NotShown
	}
	res.UsableVerdict = stats.NotShown
	if len(runs) > 0 {
		res.UsableVerdict = map[bool]string{true: stats.Met, false: stats.NotMet}[res.UsableShare.Min == 1]
	}
	return res
}

// hold opens o.Sessions port-forward sessions (no streams, so no process in the container),
// measures exec-proxy's memory and goroutines once they are open and after a collection, its CPU
// over the quiet window, then whether each session still reaches the pod, and closes them.
func hold(ctx context.Context, o Options, profiles string) (Run, error) {
	res := Run{Asked: o.Sessions}
	before, err := goMetrics(o.Get)
	if err != nil {
		return res, err
	}
	res.GoroutinesIdle = int(before["go_goroutines"])
	if res.RSSKiBBefore, err = proc.RSSKiB(o.Cluster, "exec-proxy"); err != nil {
		return res, err
	}
	u, err := url.Parse(o.PortForward)
	if err != nil {
		return res, fmt.Errorf("port-forward URL: %w", err)
	}
	seconds, cpu, err := coreShare(ctx, o.EmptyWindow, o.execProxyCPU)
	if err != nil {
		return res, fmt.Errorf("exec-proxy's CPU with no session held: %w", err)
	}
	conns, firstErr := dialAll(ctx, o.Config, u, o.Sessions, 32, time.Minute)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	opened := time.Now()
	time.Sleep(2 * time.Second) // let the sessions settle before the memory is read
	res.Reached = len(conns)
	res.RSSKiBHeld, _ = proc.RSSKiB(o.Cluster, "exec-proxy")
	// Sessions held for long see the runtime's collections (one at least every 2 minutes): the
	// second figure is after one, asked for by the heap profile's gc=1.
	if err := gcAndProfile(o, profiles); err != nil {
		o.Logf("%v", err)
	}
	res.RSSKiBSettled, res.SettleSeconds = settledRSS(o.Cluster)
	held, _ := goMetrics(o.Get)
	res.GoroutinesHeld = int(held["go_goroutines"])
	if res.Reached > 0 {
		perSession := func(kib int64) float64 { return float64(kib-res.RSSKiBBefore) / float64(res.Reached) }
		res.KiBPerSession, res.KiBPerSessionSettled = perSession(res.RSSKiBHeld), perSession(res.RSSKiBSettled)
		res.PerSession = float64(res.GoroutinesHeld-res.GoroutinesIdle) / float64(res.Reached)
		metric := func(name string) float64 { return (held[name] - before[name]) / 1024 / float64(res.Reached) }
		res.StackKiBPerSession = metric("go_memstats_stack_inuse_bytes")
		res.HeapKiBPerSession = metric("go_memstats_heap_inuse_bytes")
	}
	res.Limits = openFiles(o.Cluster)
	settle(ctx, opened, o.Settle)
	o.Logf("idle sessions: %d held; a quiet window of %s", res.Reached, o.Quiet)
	if res.Quiet, err = quietWindow(ctx, o); err != nil {
		return res, err
	}
	res.Quiet.EmptyCoreShare = cpu / seconds
	o.Logf("idle sessions: does each held session still reach the pod's port %d?", o.Port)
	res.Usable = probeAll(conns, o.Port, 32, 30*time.Second, 10*time.Minute)
	for _, c := range conns {
		_ = c.Close()
	}
	conns = nil
	deadline := time.Now().Add(30 * time.Second)
	for res.GoroutinesLeft, _ = goroutines(o.Get); res.GoroutinesLeft > res.GoroutinesIdle+20 && time.Now().Before(deadline); res.GoroutinesLeft, _ = goroutines(o.Get) {
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
func gcAndProfile(o Options, profiles string) error {
	if profiles == "" {
		_, err := o.Get("/debug/pprof/heap?gc=1", time.Minute)
		return err
	}
	// The runtime's own account (runtime.MemStats: what the heap holds, has freed, returned) last.
	for _, p := range []string{"heap?gc=1", "goroutine", "heap?debug=1"} {
		file := filepath.Join(profiles, "idle-"+strings.TrimSuffix(p, "?gc=1")+".pb.gz")
		if p == "heap?debug=1" {
			file = filepath.Join(profiles, "idle-memstats.txt")
		}
		body, err := o.Get("/debug/pprof/"+p, time.Minute)
		if err != nil {
			return fmt.Errorf("profile %s: %w", p, err)
		}
		if err := os.MkdirAll(profiles, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(file, body, 0o644); err != nil {
			return err
		}
		o.Logf("profile: %s", file)
	}
	return nil
}

// dialAll opens n port-forward connections to u, conc at a time, each given up after timeout (a
// server out of file descriptors accepts nothing and would hold the dial forever). It returns
// those opened and the first error.
func dialAll(ctx context.Context, cfg *rest.Config, u *url.URL, n, conc int, timeout time.Duration) ([]httpstream.Connection, error) {
	type result struct {
		conn httpstream.Connection
		err  error
	}
	results := make(chan result, n)
	sem := make(chan struct{}, conc)
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			results <- result{err: ctx.Err()}
			continue
		}
		go func() {
			defer func() { <-sem }()
			conn, err := dialTimeout(cfg, u, timeout)
			results <- result{conn, err}
		}()
	}
	var conns []httpstream.Connection
	var first error
	for i := 0; i < n; i++ {
		r := <-results
		switch {
		case r.err != nil && first == nil:
			first = r.err
		case r.err == nil:
			conns = append(conns, r.conn)
		}
	}
	return conns, first
}
