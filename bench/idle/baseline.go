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

// compare sums each baseline up over the runs, in the order first held, beside exec-proxy's
// figures of the same runs: the ratio is paired by run, over the runs that held both.
func compare(runs []Run) []Comparison {
	type samples struct{ share, empty, added, reached, ping, ratio []float64 }
	var names []string
	by := map[string]*samples{}
	for _, r := range runs {
		own := pingMicros(r.Quiet.CoreShare, r.Quiet.EmptyCoreShare, r.Reached)
		for _, b := range r.Baselines {
			s := by[b.Name]
			if s == nil {
				s = &samples{}
				by[b.Name], names = s, append(names, b.Name)
			}
			theirs := pingMicros(b.CoreShare, b.EmptyCoreShare, b.Reached)
			s.share, s.empty, s.added = append(s.share, b.CoreShare), append(s.empty, b.EmptyCoreShare), append(s.added, b.CoreShare-b.EmptyCoreShare)
			s.reached, s.ping = append(s.reached, float64(b.Reached)), append(s.ping, theirs)
			if theirs > 0 && own > 0 {
				s.ratio = append(s.ratio, own/theirs)
			}
		}
	}
	var out []Comparison
	for _, name := range names {
		s := by[name]
		out = append(out, Comparison{Name: name, Runs: len(s.share), Reached: stats.Summarize(s.reached),
			CoreShare: stats.BootstrapMedian(s.share, 10000), EmptyCoreShare: stats.BootstrapMedian(s.empty, 10000),
			AddedCoreShare: stats.BootstrapMedian(s.added, 10000), PingMicros: stats.BootstrapMedian(s.ping, 10000),
			Ratio: stats.BootstrapMedian(s.ratio, 10000)})
	}
	return out
}
