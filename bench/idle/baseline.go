package idle

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"k8s.io/client-go/rest"

	"github.com/exec-proxy/exec-proxy/bench/internal/execpath"
	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

// A Baseline is another path that holds the same count of sessions in each run, so that
// exec-proxy's CPU while they are quiet stands beside what passing the same keep-alives costs
// elsewhere: a bare TLS relay (the least any relay does), and kube-apiserver's own pods/portforward.
type Baseline struct {
	Name        string
	PortForward string
	Config      *rest.Config
	CPUSeconds  func() (float64, error) // of the process that relays the sessions
}

// BaselineRun is one baseline's sessions held quiet in one run.
type BaselineRun struct {
	Name       string  `json:"name"`
	Reached    int     `json:"reached"`
	FirstError string  `json:"firstError,omitempty"`
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpuSeconds"`
	CoreShare  float64 `json:"coreShare"`
	// EmptyCoreShare is the process's share of a core over a window with no session held, just
	// before: what it spends anyway (kube-apiserver's own work), taken from CoreShare per ping.
	EmptyCoreShare float64 `json:"emptyCoreShare"`
}

// Comparison is one baseline over the runs: its CPU held quiet, and exec-proxy's beside it per
// held session (the paths may not reach the same count), paired by run.
type Comparison struct {
	Name      string         `json:"name"`
	Runs      int            `json:"runs"`
	Reached   stats.Stats    `json:"reached"`
	CoreShare stats.Interval `json:"coreShare"`
	// AddedCoreShare is CoreShare less the share with none held, run by run: the sessions' own.
	AddedCoreShare stats.Interval `json:"addedCoreShare"`
	// EmptyCoreShare is its share with none held.
	EmptyCoreShare stats.Interval `json:"emptyCoreShare"`
	// CPU per ping round trip, microseconds: a held session's CPU per second × the ping period.
	PingMicros stats.Interval `json:"pingMicros"`
	// Ratio is exec-proxy's CPU per held session ÷ the baseline's.
	Ratio stats.Interval `json:"ratio"`
}

// pingMicros is the CPU of one held session's ping round trip in microseconds, from a process's
// share of a core while reached sessions were held quiet and its share with none held.
func pingMicros(held, empty float64, reached int) float64 {
	if reached == 0 {
		return 0
	}
	return (held - empty) / float64(reached) * execpath.SPDYPingPeriod.Seconds() * 1e6
}

// coreShare is the share of a core that cpu's process takes over a window of d.
func coreShare(ctx context.Context, d time.Duration, cpu func() (float64, error)) (seconds, cpuSeconds float64, err error) {
	c0, err := cpu()
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	c1, err := cpu()
	if err != nil {
		return 0, 0, err
	}
	return time.Since(t0).Seconds(), c1 - c0, nil
}

// holdBaseline holds o.Sessions port-forwards on b for a quiet window of o.BaselineQuiet, reading
// the CPU of b's process over it, and closes them.
func holdBaseline(ctx context.Context, o Options, b Baseline) (BaselineRun, error) {
	res := BaselineRun{Name: b.Name}
	u, err := url.Parse(b.PortForward)
	if err != nil {
		return res, fmt.Errorf("%s port-forward URL: %w", b.Name, err)
	}
	seconds, cpu, err := coreShare(ctx, o.EmptyWindow, b.CPUSeconds)
	if err != nil {
		return res, fmt.Errorf("%s CPU: %w", b.Name, err)
	}
	res.EmptyCoreShare = cpu / seconds
	conns, firstErr := dialAll(ctx, b.Config, u, o.Sessions, 32, time.Minute)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	res.Reached = len(conns)
	settle(ctx, time.Now(), o.Settle)
	o.Logf("idle sessions: %d held on %s; a quiet window of %s", res.Reached, b.Name, o.Quiet)
	if res.Seconds, res.CPUSeconds, err = coreShare(ctx, o.Quiet, b.CPUSeconds); err != nil {
		return res, fmt.Errorf("%s CPU: %w", b.Name, err)
	}
	res.CoreShare = res.CPUSeconds / res.Seconds
	return res, nil
}

// settle waits until d has passed since opened: every path's window starts as long after its
// sessions were opened (the last upgrades' work stays out of it).
func settle(ctx context.Context, opened time.Time, d time.Duration) {
	select {
	case <-time.After(time.Until(opened.Add(d))):
	case <-ctx.Done():
	}
}

// compare sums each baseline up over the runs, beside exec-proxy's figures of the same runs.
func compare(runs []Run) []Comparison {
	var out []Comparison
	seen := map[string]bool{}
	for _, r := range runs {
		for _, b := range r.Baselines {
			if seen[b.Name] {
				continue
			}
			seen[b.Name] = true
			var share, empty, added, reached, ping []float64
			for _, r := range runs {
				for _, x := range r.Baselines {
					if x.Name == b.Name {
						share, reached = append(share, x.CoreShare), append(reached, float64(x.Reached))
						empty, added = append(empty, x.EmptyCoreShare), append(added, x.CoreShare-x.EmptyCoreShare)
						ping = append(ping, pingMicros(x.CoreShare, x.EmptyCoreShare, x.Reached))
					}
				}
			}
			out = append(out, Comparison{Name: b.Name, Runs: len(share), Reached: stats.Summarize(reached),
				CoreShare: stats.BootstrapMedian(share, 10000), EmptyCoreShare: stats.BootstrapMedian(empty, 10000),
				AddedCoreShare: stats.BootstrapMedian(added, 10000), PingMicros: stats.BootstrapMedian(ping, 10000),
				Ratio: stats.BootstrapMedian(ratios(runs, b.Name), 10000)})
		}
	}
	return out
}

// ratios are, for each run that held both exec-proxy's sessions and the named baseline's,
// exec-proxy's CPU per held session ÷ the baseline's.
func ratios(runs []Run, name string) []float64 {
	var out []float64
	for _, r := range runs {
		own := pingMicros(r.Quiet.CoreShare, r.Quiet.EmptyCoreShare, r.Reached)
		for _, b := range r.Baselines {
			if theirs := pingMicros(b.CoreShare, b.EmptyCoreShare, b.Reached); b.Name == name && theirs > 0 && own > 0 {
				out = append(out, own/theirs)
			}
		}
	}
	return out
}
