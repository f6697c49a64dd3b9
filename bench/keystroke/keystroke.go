// Package keystroke measures the keystroke round trip of the exec sessions users open: one byte
// written to a stock kubectl's stdin until that byte first arrives back on its stdout, through
// kube-apiserver to exec-proxy (the route) and on kube-apiserver's own pods/exec, paired round by
// round, for kubectl 1.28 (SPDY) and 1.33 (WebSocket v5), for `kubectl exec -it demo -- cat` and
// `kubectl exec -i demo -- cat`, each idle and with a bulk download running beside it.
//
// Each session types Echoes letters one at a time, each once the last has echoed and after a pause
// of 5–15 ms as a person types. The echo is the first arrival of the byte: with -it the container's
// terminal echoes it (cat gets the line only at Enter, typed when the session ends), as a shell's
// line editor would; with -i, cat writes it back. The bench's side of -it is a pty in raw mode
// (kubectl's stdin, stdout and stderr), so that each byte is passed at once and echoed by the
// container alone; -i uses pipes. A session is ready once a marker byte has echoed; its start is
// not timed. The loaded case runs, beside it on the same path and with the same kubectl, another
// session's download (workload.StreamUntilStdinCloses) from before the first keystroke until after
// the last; its own rate over the keystrokes is kept, so that a reader sees both paths carried the
// same load.
//
// Per round and case, the p50 and p99 of that session's round trips are kept. Per protocol, mode
// and load, the route's figure less kube-apiserver's of the same round is a paired difference; its
// median over rounds has a 95% bootstrap interval, set against issue 28's goals: idle, p50 ≤
// kube-apiserver's + 0.15 ms and p99 ≤ + 0.5 ms; loaded, p99 ≤ kube-apiserver's. A goal is met when
// the whole interval clears it, not met when none of it does, and not shown otherwise.
package keystroke

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/exec-proxy/exec-proxy/bench/internal/execpath"
	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
	"github.com/exec-proxy/exec-proxy/bench/internal/workload"
)

// Options say where the cluster is and how much to type.
type Options struct {
	Cluster    string // the local cluster's directory
	KubectlDir string // kubectl.1.28 and kubectl.1.33
	Echoes     int    // keystrokes per session
	Rounds     int    // paired rounds after the warm-up
	Logf       func(format string, args ...any)
}

// MaxEchoes keeps an -it session's typed line within the container terminal's line buffer (4095
// bytes on Linux), beyond which it would no longer echo.
const MaxEchoes = 4000

const (
	pauseMin, pauseMax = 5 * time.Millisecond, 15 * time.Millisecond
	bulkChunk          = 64 << 20 // the bulk download stops at most this many bytes after being asked
)

// Case is one kubectl, mode and load on one path, with its figures per round.
type Case struct {
	Path     string    `json:"path"` // route or kube-apiserver
	Kubectl  string    `json:"kubectl"`
	Protocol string    `json:"protocol"`
	Mode     string    `json:"mode"` // -i or -it
	Load     string    `json:"load"` // idle or loaded
	P50Ms    []float64 `json:"p50msRounds"`
	P99Ms    []float64 `json:"p99msRounds"`
	// Loaded: the bulk session's MiB/s over the keystrokes, per round.
	BulkMiBps []float64 `json:"bulkMiBpsRounds,omitempty"`
}

// Result is every case of the part, and the route set against kube-apiserver's path.
type Result struct {
	Echoes      int          `json:"echoesPerSession"`
	PauseMs     [2]float64   `json:"pauseMs"` // between keystrokes, drawn from [low, high)
	Rounds      int          `json:"rounds"`
	Cases       []Case       `json:"cases"`
	Comparisons []Comparison `json:"comparisons"`
}

var (
	kubectls = []struct{ version, protocol string }{{"1.28", "SPDY"}, {"1.33", "WebSocket"}}
	paths    = []string{"route", "kube-apiserver"}
	modes    = []string{"-it", "-i"}
	loads    = []string{"idle", "loaded"}
)

// Run measures every case Rounds times after a discarded warm-up, in an order turned each round
// so that drift is shared.
func Run(ctx context.Context, o Options) (*Result, error) {
	res := &Result{Echoes: o.Echoes, Rounds: o.Rounds, PauseMs: [2]float64{ms(pauseMin), ms(pauseMax)}, Cases: cases()}
	for round := 0; round <= o.Rounds; round++ {
		for _, i := range stats.TurnedOrder(len(res.Cases), round) {
			c := &res.Cases[i]
			got, err := measure(ctx, o, c)
			if err != nil {
				return nil, fmt.Errorf("keystroke: %s %s %s on %s: %w", c.Kubectl, c.Mode, c.Load, c.Path, err)
			}
			bulk := ""
			if c.Load == "loaded" {
				bulk = fmt.Sprintf(", bulk download %.0f MiB/s", got.bulkMiBps)
			}
			o.Logf("keystroke, round %d of %d%s: %s exec %s, %s, on %s: p50 %.3f ms, p99 %.3f ms%s",
				round, o.Rounds, map[bool]string{true: " (warm-up, discarded)"}[round == 0], c.Kubectl, c.Mode, c.Load, c.Path, got.p50, got.p99, bulk)
			if round == 0 {
				continue
			}
			c.P50Ms = append(c.P50Ms, got.p50)
			c.P99Ms = append(c.P99Ms, got.p99)
			if c.Load == "loaded" {
				c.BulkMiBps = append(c.BulkMiBps, got.bulkMiBps)
			}
		}
	}
	res.Comparisons = compare(res.Cases)
	return res, nil
}

// cases are every path × kubectl × mode × load, with nothing measured yet.
func cases() []Case {
	var cs []Case
	for _, k := range kubectls {
		for _, m := range modes {
			for _, l := range loads {
				for _, p := range paths {
					cs = append(cs, Case{Path: p, Kubectl: "kubectl." + k.version, Protocol: k.protocol, Mode: m, Load: l})
				}
			}
		}
	}
	return cs
}

// sample is one session's figures, in ms and MiB/s.
type sample struct{ p50, p99, bulkMiBps float64 }

// measure runs one case's session, and for a loaded case the bulk session beside it.
func measure(ctx context.Context, o Options, c *Case) (sample, error) {
	keys, bulk := argvs(o, c)
	return typeInto(ctx, keys, c.Mode == "-it", bulk, o.Echoes, limitsUsed)
}

// limitsUsed are the sessions' limits (shorter in tests).
var limitsUsed = defaultLimits

// argvs are the case's kubectl exec ... -- cat, and the loaded case's download through the same
// kubectl and path (nil when idle).
func argvs(o Options, c *Case) (keys, bulk []string) {
	kubectl := func(flags string, command ...string) []string {
		kubeconfig := execpath.AdminKubeconfig(o.Cluster, c.Path)
		return append([]string{filepath.Join(o.KubectlDir, c.Kubectl), "--kubeconfig", kubeconfig, "-n", "demo", "exec", flags, "demo", "-c", "main", "--"}, command...)
	}
	if c.Load == "loaded" {
		bulk = kubectl("-i", workload.StreamUntilStdinCloses(bulkChunk)...)
	}
	return kubectl(c.Mode, "cat"), bulk
}

// typeInto starts the bulk session (when bulk is set) and waits until it flows, then types echoes
// keystrokes into argv and ends both sessions cleanly.
func typeInto(ctx context.Context, argv []string, tty bool, bulk []string, echoes int, lim limits) (sample, error) {
	var load *session
	var counter workload.Counter
	if bulk != nil {
		var err error
		if load, err = start(ctx, bulk, false, &counter, lim); err != nil {
			return sample{}, fmt.Errorf("bulk session: %w", err)
		}
		defer load.stop()
		if err := load.waitFlow(); err != nil {
			return sample{}, fmt.Errorf("bulk session: %w", err)
		}
	}
	s, err := start(ctx, argv, tty, nil, lim)
	if err != nil {
		return sample{}, err
	}
	defer s.stop()
	if err := s.ready(); err != nil {
		return sample{}, err
	}
	before, t0 := counter.Bytes(), time.Now()
	rtts, err := s.echoes(echoes, pauseMin, pauseMax)
	if err != nil {
		return sample{}, err
	}
	var got sample
	if load != nil {
		got.bulkMiBps = float64(counter.Bytes()-before) / (1 << 20) / time.Since(t0).Seconds()
	}
	if err := s.close(); err != nil {
		return sample{}, err
	}
	if load != nil {
		if err := load.close(); err != nil {
			return sample{}, fmt.Errorf("bulk session: %w", err)
		}
	}
	got.p50, got.p99 = percentilesMs(rtts)
	return got, nil
}

// percentilesMs are the p50 and p99 of ds, nearest rank, in ms.
func percentilesMs(ds []time.Duration) (p50, p99 float64) {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = ms(d)
	}
	slices.Sort(xs)
	if len(xs) == 0 {
		return 0, 0
	}
	return stats.Percentile(xs, 50), stats.Percentile(xs, 99)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
