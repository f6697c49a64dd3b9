package apf

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable writes a's figures for results.txt.
func WriteTable(w io.Writer, a *Result) {
	fmt.Fprintf(w, "\nAnother user's reads (viewer, -n demo) with %d idle port-forwards held through the route (%s; exec-proxy's execproxy_sessions_active %.0f–%.0f) and with none: %d pairs of alternating batches after one of warm-up, %d reads of each kind per batch\n",
		a.Sessions, strings.Join(a.Users, ", "), a.SessionsActive.Min, a.SessionsActive.Max, a.Batches, a.ReadsPerBatch)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "READ\tPATH\tNO SESSIONS P50/P99 ms\t%d HELD P50/P99 ms\tADDED P50 ms, PAIRED BATCHES (95%% CI)\tREADS NONE/HELD\tFAILED\t\n", a.Sessions)
	for _, r := range a.Reads {
		fmt.Fprintf(tw, "%s\t%s\t%.1f / %.1f\t%.1f / %.1f\t%+.2f (%+.2f to %+.2f)\t%d / %d\t%d\t\n", r.Measure, r.Path, r.NotHeld.P50, r.NotHeld.P99,
			r.Held.P50, r.Held.P99, r.AddedP50.Median, r.AddedP50.Low, r.AddedP50.High, r.NotHeld.Count, r.Held.Count, r.Failed)
	}
	tw.Flush()
	for _, r := range a.Reads {
		if r.FirstError != "" {
			fmt.Fprintf(w, "First failed read, %s on %s: %s\n", r.Measure, r.Path, r.FirstError)
		}
	}
	fmt.Fprintf(w, "kube-apiserver's priority and fairness, %s, the most over samples between reads: %.0f seats executing and %.0f requests in queue with the sessions held (%d samples); %.0f and %.0f with none (%d samples)\n",
		strings.Join(levels, " + "), a.Held.ExecutingSeats, a.Held.InQueue, a.Held.Samples, a.NotHeld.ExecutingSeats, a.NotHeld.InQueue, a.NotHeld.Samples)
}
