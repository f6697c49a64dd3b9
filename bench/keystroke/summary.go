package keystroke

import (
	"bytes"
	"fmt"
	"text/tabwriter"

	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

// Comparison is the route set against kube-apiserver's path for one protocol, mode and load.
type Comparison struct {
	Kubectl   string `json:"kubectl"`
	Protocol  string `json:"protocol"`
	Mode      string `json:"mode"`
	Load      string `json:"load"`
	Route     Side   `json:"route"`
	APIServer Side   `json:"kubeAPIServer"`
	P50       Diff   `json:"p50RouteMinusKubeAPIServer"`
	P99       Diff   `json:"p99RouteMinusKubeAPIServer"`
}

// Side is one path's medians over the rounds.
type Side struct {
	P50Ms     float64 `json:"p50ms"`
	P99Ms     float64 `json:"p99ms"`
	BulkMiBps float64 `json:"bulkMiBps,omitempty"`
}

// Diff is the route's figure less kube-apiserver's, in ms: per round, their median with its 95%
// interval, the difference of the two medians beside it, and the goal, if there is one.
type Diff struct {
	Rounds    []float64      `json:"rounds"`
	Paired    stats.Interval `json:"paired"`
	OfMedians float64        `json:"ofMedians"`
	Goal      *Goal          `json:"goal,omitempty"`
}

// Goal is issue 28's bound on a difference, and whether the interval clears it.
type Goal struct {
	MaxMs   float64 `json:"maxMs"`
	Verdict string  `json:"verdict"` // met, not met or not shown
}

// goals are issue 28's bounds on route − kube-apiserver, in ms, by load and percentile.
var goals = map[string]map[string]float64{"idle": {"p50": 0.15, "p99": 0.5}, "loaded": {"p99": 0}}

// compare pairs each route case with kube-apiserver's of the same kubectl, mode and load, round by
// round.
func compare(cs []Case) []Comparison {
	var out []Comparison
	for _, r := range cs {
		if r.Path != "route" {
			continue
		}
		for _, a := range cs {
			if a.Path != "kube-apiserver" || a.Kubectl != r.Kubectl || a.Mode != r.Mode || a.Load != r.Load {
				continue
			}
			out = append(out, Comparison{Kubectl: r.Kubectl, Protocol: r.Protocol, Mode: r.Mode, Load: r.Load,
				Route: side(r), APIServer: side(a),
				P50: diff(r.P50Ms, a.P50Ms, goals[r.Load], "p50"), P99: diff(r.P99Ms, a.P99Ms, goals[r.Load], "p99")})
		}
	}
	return out
}

func side(c Case) Side {
	s := Side{P50Ms: stats.Summarize(c.P50Ms).Median, P99Ms: stats.Summarize(c.P99Ms).Median}
	if len(c.BulkMiBps) > 0 {
		s.BulkMiBps = stats.Summarize(c.BulkMiBps).Median
	}
	return s
}

// diff pairs route and base by round (a round either lacks is left out).
func diff(route, base []float64, bounds map[string]float64, percentile string) Diff {
	var d Diff
	for i := range min(len(route), len(base)) {
		d.Rounds = append(d.Rounds, route[i]-base[i])
	}
	d.Paired = stats.BootstrapMedian(d.Rounds, 10000)
	d.OfMedians = stats.Summarize(route).Median - stats.Summarize(base).Median
	if bound, ok := bounds[percentile]; ok && len(d.Rounds) > 0 {
		d.Goal = &Goal{MaxMs: bound, Verdict: stats.Verdict(d.Paired, len(d.Rounds), bound, false)}
	}
	return d
}

// WriteTable writes the part's table: per protocol, mode and load, both paths' medians, the
// route's paired differences with their intervals and goals, and the bulk rates beside.
func WriteTable(buf *bytes.Buffer, r *Result) {
	fmt.Fprintf(buf, "\nKeystroke round trip (stock kubectl exec ... -- cat: one byte written, its first echo read; %d per session, %.0f–%.0f ms apart; %d paired rounds after a warm-up; ms, medians over rounds; route − kube-apiserver paired [95%% interval]; of medians):\n",
		r.Echoes, r.PauseMs[0], r.PauseMs[1], r.Rounds)
	w := tabwriter.NewWriter(buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "KUBECTL\tPROTOCOL\tMODE\tLOAD\tROUTE P50 / P99\tKUBE-APISERVER P50 / P99\tP50 ROUTE − KUBE-APISERVER\tGOAL\tP99 ROUTE − KUBE-APISERVER\tGOAL\tBULK MiB/s ROUTE / KUBE-APISERVER")
	for _, c := range r.Comparisons {
		bulk := "-"
		if c.Load == "loaded" {
			bulk = fmt.Sprintf("%.0f / %.0f", c.Route.BulkMiBps, c.APIServer.BulkMiBps)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.3f / %.3f\t%.3f / %.3f\t%s\t%s\t%s\t%s\t%s\n", c.Kubectl, c.Protocol, c.Mode, c.Load,
			c.Route.P50Ms, c.Route.P99Ms, c.APIServer.P50Ms, c.APIServer.P99Ms, diffCell(c.P50), goalCell(c.P50.Goal), diffCell(c.P99), goalCell(c.P99.Goal), bulk)
	}
	w.Flush()
}

func diffCell(d Diff) string {
	return fmt.Sprintf("%+.3f [%+.3f, %+.3f]; %+.3f", d.Paired.Median, d.Paired.Low, d.Paired.High, d.OfMedians)
}

func goalCell(g *Goal) string {
	if g == nil {
		return "-"
	}
	return fmt.Sprintf("≤ %+.2f: %s", g.MaxMs, g.Verdict)
}
