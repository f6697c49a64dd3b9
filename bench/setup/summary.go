package setup

import (
	"bytes"
	"fmt"
	"text/tabwriter"

	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

// Comparison is one difference between cases, in ms, at one percentile: per round, their median
// with its 95% interval, the difference of the cases' medians beside it, and issue 28's goal, if
// it sets one.
type Comparison struct {
	Name       string         `json:"name"`
	Percentile string         `json:"percentile"` // p50 or p99
	RoundsMs   []float64      `json:"roundsMs"`
	Paired     stats.Interval `json:"paired"`
	OfMedians  float64        `json:"ofMediansMs"`
	Goal       *Goal          `json:"goal,omitempty"`
}

// Goal is issue 28's bound on a difference, and whether the interval clears it.
type Goal struct {
	MaxMs   float64 `json:"maxMs"`
	Verdict string  `json:"verdict"` // met, not met or not shown
}

// resamples of the bootstrap intervals.
const resamples = 10000

// A term of a difference: a case's figure, added (sign 1) or taken away (sign -1).
type term struct {
	path string
	sign float64
}

// comparisons are the differences reported, with their goals (nil: none). Route on less
// kube-apiserver is the route's added time less kube-apiserver's: direct's figure cancels.
var comparisons = []struct {
	name  string
	terms []term
	goals map[string]float64 // by percentile
}{
	{name: "added: kube-apiserver − direct", terms: []term{{APIServer, 1}, {Direct, -1}}},
	{name: "added: route, webhook on − direct", terms: []term{{RouteOn, 1}, {Direct, -1}}},
	{name: "added: route, webhook off − direct", terms: []term{{RouteOff, 1}, {Direct, -1}}},
	{name: "route's added (webhook on) − kube-apiserver's", terms: []term{{RouteOn, 1}, {APIServer, -1}}, goals: map[string]float64{"p50": 0, "p99": 0}},
	{name: "webhook on − off (route)", terms: []term{{RouteOn, 1}, {RouteOff, -1}}, goals: map[string]float64{"p50": 2}},
}

// summarize sets each case's medians and every comparison from the per-round figures.
func summarize(res *Result) {
	figures := map[string]map[string][]float64{}
	for i := range res.Cases {
		c := &res.Cases[i]
		c.P50, c.P99 = stats.Summarize(c.P50Ms).Median, stats.Summarize(c.P99Ms).Median
		figures[c.Path] = map[string][]float64{"p50": c.P50Ms, "p99": c.P99Ms}
	}
	res.Comparisons = nil
	for _, cmp := range comparisons {
		for _, pct := range []string{"p50", "p99"} {
			var series [][]float64
			for _, t := range cmp.terms {
				series = append(series, figures[t.path][pct])
			}
			c := Comparison{Name: cmp.name, Percentile: pct, RoundsMs: paired(cmp.terms, series)}
			c.Paired = stats.BootstrapMedian(c.RoundsMs, resamples)
			for i, t := range cmp.terms {
				c.OfMedians += t.sign * stats.Summarize(series[i]).Median
			}
			if bound, ok := cmp.goals[pct]; ok && len(c.RoundsMs) > 0 {
				c.Goal = &Goal{MaxMs: bound, Verdict: verdict(c.Paired, bound)}
			}
			res.Comparisons = append(res.Comparisons, c)
		}
	}
}

// paired is the signed sum of the terms' figures round by round, over the rounds all of them have.
func paired(terms []term, series [][]float64) []float64 {
	n := -1
	for _, s := range series {
		if n < 0 || len(s) < n {
			n = len(s)
		}
	}
	out := []float64{}
	for r := range max(n, 0) {
		var d float64
		for i, t := range terms {
			d += t.sign * series[i][r]
		}
		out = append(out, d)
	}
	return out
}

// verdict is met when the whole interval is within the bound, not met when none of it is, and
// not shown when it straddles the bound.
func verdict(iv stats.Interval, maxMs float64) string {
	switch {
	case iv.High <= maxMs:
		return "met"
	case iv.Low > maxMs:
		return "not met"
	}
	return "not shown"
}

// WriteTable writes the part's table: each case's medians, then every comparison with its
// interval and goal, and what the webhook received.
func WriteTable(buf *bytes.Buffer, r *Result) {
	fmt.Fprintf(buf, "\nPort-forward setup (client-go SPDY port-forward to demo:%d, no process started: from the request to the first stream pair open and the pod's answer on it; %d sessions per case and round, one at a time, after %d untimed; %d paired rounds after a warm-up; ms, medians over rounds):\n",
		r.Port, r.Sessions, r.WarmSessions, r.Rounds)
	w := tabwriter.NewWriter(buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "PATH\tP50\tP99\t")
	for _, c := range r.Cases {
		fmt.Fprintf(w, "%s\t%.2f\t%.2f\t\n", c.Path, c.P50, c.P99)
	}
	w.Flush()
	w = tabwriter.NewWriter(buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\nDIFFERENCE\tPERCENTILE\tPAIRED [95% INTERVAL]\tOF MEDIANS\tGOAL\t")
	for _, c := range r.Comparisons {
		goal := "-"
		if c.Goal != nil {
			goal = fmt.Sprintf("≤ %+.2f: %s", c.Goal.MaxMs, c.Goal.Verdict)
		}
		fmt.Fprintf(w, "%s\t%s\t%+.2f [%+.2f, %+.2f]\t%+.2f\t%s\t\n", c.Name, c.Percentile, c.Paired.Median, c.Paired.Low, c.Paired.High, c.OfMedians, goal)
	}
	w.Flush()
	h := r.Webhook
	fmt.Fprintf(buf, "Audit webhook: %d events received for %d route sessions with it on (a start and an end record each, and the restarts' readiness execs'); %d while it was off; %d posts refused.\n",
		h.Events, h.RouteSessions, h.EventsWhileOff, h.Refused)
}
