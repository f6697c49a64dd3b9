package idle

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/exec-proxy/exec-proxy/bench/internal/proc"
)

// Quiet is exec-proxy's CPU over a window while the sessions are held and nothing is asked of it
// (its /metrics are read just before and just after).
type Quiet struct {
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpuSeconds"` // user+system, /proc/<pid>/stat
	CoreShare  float64 `json:"coreShare"`  // CPUSeconds ÷ Seconds: a share of one core
	// EmptyCoreShare is exec-proxy's share with no session held, over a window just before.
	EmptyCoreShare float64 `json:"emptyCoreShare"`
	// The collector's CPU is the runtime's own estimate (/cpu/classes/gc/total:cpu-seconds on
	// /metrics, mark and pause work with the idle-time marking; an overestimate, says the runtime),
	// which moves only when a collection ends. So its share is over the span between the last
	// collection ended before the window and the last ended in it; GCCycles 0: none ended in the
	// window and nothing is shown (the runtime forces one every 2 minutes at least).
	GCCPUSeconds  float64 `json:"gcCPUSeconds"`
	GCSpanSeconds float64 `json:"gcSpanSeconds"`
	GCCycles      int     `json:"gcCycles"`
	GCCoreShare   float64 `json:"gcCoreShare"`
	GCMissing     string  `json:"gcMissing,omitempty"` // what /metrics lacked for the GC figure
}

// Runtime figures on exec-proxy's /metrics (component-base's legacy registry registers Go's
// collector with every runtime/metrics figure).
const (
	gcCPUMetric    = "go_cpu_classes_gc_total_cpu_seconds_total"
	lastGCMetric   = "go_memstats_last_gc_time_seconds"
	gcCyclesMetric = "go_gc_duration_seconds_count"
)

func (q Quiet) gcText() string {
	if q.GCCycles == 0 {
		return "not shown (no collection ended in the window)"
	}
	return fmt.Sprintf("%.2f%% of a core (%d collections over %.0f s)", 100*q.GCCoreShare, q.GCCycles, q.GCSpanSeconds)
}

// quietWindow measures exec-proxy's CPU over o.Quiet. An exec-proxy out of file descriptors may not
// answer /metrics: the GC figure is then not shown, and the CPU figure stands.
func quietWindow(ctx context.Context, o Options) (Quiet, error) {
	m0, err0 := goMetrics(o.Get)
	seconds, cpu, err := coreShare(ctx, o.Quiet, o.execProxyCPU)
	if err != nil {
		return Quiet{}, err
	}
	m1, err1 := goMetrics(o.Get)
	q := quietFigures(seconds, cpu, m0, m1)
	if err := errors.Join(err0, err1); err != nil {
		q.GCMissing = fmt.Sprintf("/metrics: %v", err)
	}
	return q, nil
}

// quietFigures are the window's figures from its length, the process's CPU seconds in it, and the
// runtime's figures before (m0) and after (m1).
func quietFigures(seconds, cpu float64, m0, m1 map[string]float64) Quiet {
	q := Quiet{Seconds: seconds, CPUSeconds: cpu}
	if seconds > 0 {
		q.CoreShare = cpu / seconds
	}
	for _, name := range []string{gcCPUMetric, lastGCMetric, gcCyclesMetric} {
		_, ok0 := m0[name]
		_, ok1 := m1[name]
		if !ok0 || !ok1 {
			q.GCMissing = name
			return q
		}
	}
	q.GCCycles = int(m1[gcCyclesMetric] - m0[gcCyclesMetric])
	q.GCSpanSeconds = m1[lastGCMetric] - m0[lastGCMetric]
	q.GCCPUSeconds = m1[gcCPUMetric] - m0[gcCPUMetric]
	if q.GCCycles <= 0 || q.GCSpanSeconds <= 0 {
		q.GCCycles = 0
		return q
	}
	q.GCCoreShare = q.GCCPUSeconds / q.GCSpanSeconds
	return q
}

// goroutines reads go_goroutines from exec-proxy's /metrics.
func goroutines(get func(string, time.Duration) ([]byte, error)) (int, error) {
	m, err := goMetrics(get)
	return int(m["go_goroutines"]), err
}

// goMetrics reads the Go runtime's unlabelled figures (go_*) from exec-proxy's /metrics.
func goMetrics(get func(string, time.Duration) ([]byte, error)) (map[string]float64, error) {
	body, err := get("/metrics", 10*time.Second)
	if err != nil {
		return nil, err
	}
	return parseGoMetrics(string(body))
}

func parseGoMetrics(body string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
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

// Limits are the open-file limits that bound how many sessions can be held: each held session is
// a file in the bench, two in exec-proxy (the client's connection and the kubelet's), and more in
// the kubelet and containerd beyond.
type Limits struct {
	Bench uint64 `json:"bench"` // the bench's soft limit, raised to its hard one
	// While the sessions are held, by process: the soft limit (-1: none) and the files open.
	Processes map[string]Files `json:"processes,omitempty"`
}

// Files are one process's open-file limit and open files.
type Files struct {
	Limit int64 `json:"limit"`
	Open  int   `json:"open"`
}

// openFiles reads the limits of exec-proxy and of node1's kubelet and containerd (the demo pod's).
func openFiles(cluster string) Limits {
	l := Limits{Processes: map[string]Files{}}
	for _, name := range []string{"exec-proxy", "kubelet-node1", "containerd-node1"} {
		if limit, open, err := proc.OpenFiles(cluster, name); err == nil {
			l.Processes[name] = Files{Limit: limit, Open: open}
		}
	}
	return l
}

// raiseOpenFiles raises the bench's soft open-file limit to its hard one (Go does so at start too;
// this says so in the results) and returns it. exec-proxy, started by hack/cluster/exec-proxy.sh
// from the bench, inherits the bench's original soft limit and, being Go, raises it to the same
// hard limit; hack/bench.sh raises the shell's soft limit before anything starts.
func raiseOpenFiles() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("open-file limit: %w", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, fmt.Errorf("raising the open-file limit to %d: %w", l.Max, err)
		}
	}
	return l.Cur, nil
}
