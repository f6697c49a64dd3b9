package concurrent

import (
	"bytes"
	"fmt"
	"text/tabwriter"

	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

// saturated is the machine's busy share above which the clients and servers compete for the CPU
// rather than the path limiting the rate.
const saturated = 0.9

// WriteTable writes the part's table: per case the aggregate MiB/s and Jain's index with their
// intervals, the machine's busy share and the clients' part of it; then the route's paired ratios
// to kube-apiserver's path with the goals' verdicts, and whether the clients were the bottleneck.
func WriteTable(buf *bytes.Buffer, r *Result) {
	fmt.Fprintf(buf, "\n%d concurrent downloads (stock kubectl exec, started together; each one's stdout bytes over a %.0f s window once all flow), %d paired rounds after a warm-up, median [95%% interval]:\n",
		r.Sessions, r.WindowSeconds, r.Rounds)
	iv := func(i stats.Interval, format string) string {
		return fmt.Sprintf(format+" ["+format+", "+format+"]", i.Median, i.Low, i.High)
	}
	w := tabwriter.NewWriter(buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "KUBECTL\tPROTOCOL\tPATH\tAGGREGATE MiB/s\tJAIN\tJAIN ≥ 0.95\tMACHINE BUSY\tCLIENTS' SHARE\t")
	for _, c := range r.Cases {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%.0f%%\t%.0f%%\t\n", c.Kubectl, c.Protocol, c.Path, iv(c.MiBps, "%.0f"), iv(c.Jain, "%.3f"), c.JainVerdict,
			100*c.MachineBusy.Median, 100*c.ClientShare.Median)
	}
	w.Flush()
	for _, ra := range r.Ratios {
		fmt.Fprintf(buf, "%s: route ÷ kube-apiserver's path %s paired (ratio of medians %.3f×), goal ≥ %.2f×: %s\n",
			ra.Protocol, iv(ra.Paired, "%.3f"), ra.RatioOfMedians, AggregateGoal, ra.Verdict)
	}
	for _, c := range r.Cases {
		if c.MachineBusy.Median >= saturated {
			fmt.Fprintf(buf, "The machine was saturated (%s on %s: %.0f%% busy, the clients %.0f%% of it): the rates are what the clients and servers get of a shared CPU, not what the path alone allows.\n",
				c.Kubectl, c.Path, 100*c.MachineBusy.Median, 100*c.ClientShare.Median)
			return
		}
	}
	buf.WriteString("The machine had CPU to spare in every case: the clients were not the bottleneck.\n")
}
