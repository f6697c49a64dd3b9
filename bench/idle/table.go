package idle

import (
	"bytes"
	"fmt"
	"sort"
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
