package idle

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/exec-proxy/exec-proxy/bench/internal/execpath"
	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

// WriteTable writes the part's figures: memory per session over the runs, the median run's detail,
// the quiet window's CPU and GC shares with their intervals over the runs, how many held sessions
// were still usable, the open-file limits, and each goal's verdict.
func WriteTable(buf *bytes.Buffer, i *Result) {
	fmt.Fprintf(buf, "\nIdle sessions on one exec-proxy, %d runs each on a fresh one: KiB per session min/median/max %.1f/%.1f/%.1f once open, %.1f/%.1f/%.1f settled (after a GC, once the runtime returned what it freed).\n",
		i.Runs, i.KiBPerSessionRuns.Min, i.KiBPerSessionRuns.Median, i.KiBPerSessionRuns.Max,
		i.KiBPerSessionSettledRuns.Min, i.KiBPerSessionSettledRuns.Median, i.KiBPerSessionSettledRuns.Max)
	fmt.Fprintf(buf, "The median run: %d of %d held; RSS %d → %d KiB, %.1f KiB per session; settled in %d s at RSS %d KiB, %.1f KiB per session (stacks %.1f, heap in use %.1f); %.1f goroutines per session; goroutines %d → %d → %d after closing",
		i.Reached, i.Asked, i.RSSKiBBefore, i.RSSKiBHeld, i.KiBPerSession, i.SettleSeconds, i.RSSKiBSettled, i.KiBPerSessionSettled, i.StackKiBPerSession, i.HeapKiBPerSession,
		i.PerSession, i.GoroutinesIdle, i.GoroutinesHeld, i.GoroutinesLeft)
	if i.FirstError != "" {
		fmt.Fprintf(buf, " (first error: %s)", i.FirstError)
	}
	buf.WriteString("\n")
	pct := func(x float64) string { return fmt.Sprintf("%.2f%%", 100*x) }
	fmt.Fprintf(buf, "Held quiet (%.0f s windows): exec-proxy's CPU %s of a core [%s, %s] over the runs, goal < %s: %s; ",
		i.Quiet.Seconds, pct(i.CoreShare.Median), pct(i.CoreShare.Low), pct(i.CoreShare.High), pct(CoreGoal), i.CPUVerdict)
	if i.GCRuns == 0 {
		fmt.Fprintf(buf, "GC not shown (no window saw a collection end), goal < %s: %s\n", pct(GCCoreGoal), i.GCVerdict)
	} else {
		fmt.Fprintf(buf, "GC %s [%s, %s] (runtime estimate, %d of %d runs' windows saw a collection), goal < %s: %s\n",
			pct(i.GCCoreShare.Median), pct(i.GCCoreShare.Low), pct(i.GCCoreShare.High), i.GCRuns, i.Runs, pct(GCCoreGoal), i.GCVerdict)
	}
	writeCompared(buf, i)
	fmt.Fprintf(buf, "Still usable after the window (an HTTP GET to the pod on each held session): ")
	for n, r := range i.PerRun {
		if n > 0 {
			buf.WriteString(", ")
		}
		fmt.Fprintf(buf, "%d of %d", r.Usable.Usable, r.Asked)
	}
	fmt.Fprintf(buf, " (usable ÷ asked min %.4f), goal all: %s", i.UsableShare.Min, i.UsableVerdict)
	for _, r := range i.PerRun {
		if r.Usable.FirstError != "" {
			fmt.Fprintf(buf, " (first error: %s)", r.Usable.FirstError)
			break
		}
	}
	buf.WriteString("\n")
	fmt.Fprintf(buf, "Open files (the median run, held): bench limit %d", i.Limits.Bench)
	names := make([]string, 0, len(i.Limits.Processes))
	for name := range i.Limits.Processes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f := i.Limits.Processes[name]
		fmt.Fprintf(buf, "; %s %d open of %d", name, f.Open, f.Limit)
	}
	buf.WriteString("\n")
	for _, name := range names {
		if f := i.Limits.Processes[name]; i.UsableShare.Min < 1 && f.Limit > 0 && float64(f.Open) >= 0.99*float64(f.Limit) {
			fmt.Fprintf(buf, "%s was at its open-file limit: the sessions not reached or not usable are the machine's limit (raise the hard limit before the cluster starts), not a measure of exec-proxy.\n", name)
		}
	}
}

// writeCompared writes what the same quiet sessions cost exec-proxy and each baseline per ping
// round trip, and whether the CPU goal is within what any relay of the pings needs.
func writeCompared(buf *bytes.Buffer, i *Result) {
	if len(i.Compared) == 0 {
		return
	}
	iv := func(x stats.Interval, format string) string {
		return fmt.Sprintf(format+" ["+format+", "+format+"]", x.Median, x.Low, x.High)
	}
	fmt.Fprintf(buf, "The same sessions held quiet on other paths in the same runs (client-go pings each every %s; CPU of the process that relays them; medians over the runs with 95%% bootstrap intervals, which over 3 runs are their least and greatest):\n", execpath.SPDYPingPeriod)
	pct := func(x stats.Interval) stats.Interval {
		return stats.Interval{Median: 100 * x.Median, Low: 100 * x.Low, High: 100 * x.High}
	}
	fmt.Fprintf(buf, "  %-16s %-6s %-22s %-22s %-24s %s\n", "path", "held", "CPU held, % of a core", "CPU none held, %", "µs per ping round trip", "exec-proxy ÷ path, per ping")
	fmt.Fprintf(buf, "  %-16s %-6.0f %-22s %-22s %-24s\n", "exec-proxy", i.median(func(r Run) float64 { return float64(r.Reached) }),
		iv(pct(i.CoreShare), "%.2f"), iv(pct(i.EmptyCoreShare), "%.2f"), iv(i.PingMicros, "%.1f"))
	for _, c := range i.Compared {
		fmt.Fprintf(buf, "  %-16s %-6.0f %-22s %-22s %-24s %s\n", c.Name, c.Reached.Median,
			iv(pct(c.CoreShare), "%.2f"), iv(pct(c.EmptyCoreShare), "%.2f"), iv(c.PingMicros, "%.1f"), iv(c.Ratio, "%.2f×"))
	}
	for _, c := range i.Compared {
		if c.Runs > 0 && c.AddedCoreShare.Low > CoreGoal {
			fmt.Fprintf(buf, "%s takes %.2f%% of a core or more to relay the same sessions' pings (beyond what it takes with none held): over the goal of < %.0f%% too.\n",
				c.Name, 100*c.AddedCoreShare.Low, 100*CoreGoal)
		}
	}
}

// median is the median over the runs of f.
func (i *Result) median(f func(Run) float64) float64 {
	var xs []float64
	for _, r := range i.PerRun {
		xs = append(xs, f(r))
	}
	return stats.Summarize(xs).Median
}
