package throughput

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteTable writes the transfers' figures, the CPU they cost by process, the ratios against
// their goals, and setup latency.
func WriteTable(buf *bytes.Buffer, r *Result) {
	fmt.Fprintf(buf, "\nThroughput: %d paired rounds after a discarded warm-up, %d MiB down, %d MiB up; exec-proxy with its audit log on, ns-user's sessions recorded by a session policy rule, admin's not; exec-proxy at %s and at %s in every round (restarted between them).\n",
		r.Rounds, r.DownloadBytes>>20, r.UploadBytes>>20, r.Configs[0].Name, r.Configs[len(r.Configs)-1].Name)
	w := tabwriter.NewWriter(buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "THROUGHPUT MiB/s\tPROTOCOL\tPATH\tMEDIAN [95%]\tCPU s/GiB BY PROCESS (MEDIANS)\t")
	for _, f := range r.Figures {
		fmt.Fprintf(w, "%s\t%s\t%s\t%.0f [%.0f–%.0f]\t%s\t\n", f.Direction, f.Protocol, f.Path, f.MiBps.Median, f.MiBps.Low, f.MiBps.High, cpuCell(f.CPUPerGiB, f.MachineBusy))
	}
	w.Flush() // each table its own columns
	buf.WriteString("\n")
	w = tabwriter.NewWriter(buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "PROTOCOL\tDIRECTION\tPAIRED MEDIAN [95%]\tRATIO OF MEDIANS\tGOAL\tVERDICT\tRATIO")
	for _, x := range r.Ratios {
		if len(x.Rounds) == 0 {
			continue // a path without this direction (WebSocket v4 to the kubelet cannot close stdin)
		}
		name := x.Name + ": " + x.Of + " ÷ " + x.Over
		if x.Note != "" {
			name += " (" + x.Note + ")"
		}
		goal, v := "", x.Verdict
		if x.Goal != nil {
			goal = map[bool]string{true: "≤ ", false: "≥ "}[x.Goal.AtMost] + fmt.Sprintf("%.2f×", x.Goal.Value)
		}
		fmt.Fprintf(w, "%s\t%s\t%.3f× [%.3f–%.3f]\t%.3f×\t%s\t%s\t%s\n", x.Protocol, x.Direction, x.Paired.Median, x.Paired.Low, x.Paired.High, x.OfMedians, goal, v, name)
	}
	w.Flush()
	buf.WriteString("\n")
	w = tabwriter.NewWriter(buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SETUP exec -- true\tPROTOCOL\tPATH\tP50 ms\tP99 ms\tSESSIONS\tP50 ÷ KUBE-APISERVER\tP99 ÷ KUBE-APISERVER\t")
	for _, s := range r.Setup {
		var api struct{ P50, P99 float64 }
		for _, a := range r.Setup {
			if a.Path == APIServer && a.Protocol == s.Protocol {
				api.P50, api.P99 = a.P50, a.P99
			}
		}
		fmt.Fprintf(w, "setup\t%s\t%s\t%.1f\t%.1f\t%d\t%s\t%s\t\n", s.Protocol, s.Path, s.P50, s.P99, s.Count, ratioCell(s.P50, api.P50), ratioCell(s.P99, api.P99))
	}
	w.Flush()
	for _, f := range r.Failed {
		fmt.Fprintf(buf, "Failed and run once more: %s\n", f)
	}
}

func ratioCell(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// cpuCell lists the processes that spent at least 0.05 s/GiB, most first, then the machine and
// what no process named spent.
func cpuCell(cpu map[string]float64, busy float64) string {
	var names []string
	for k, v := range cpu {
		if k != Machine && k != Other && v >= 0.05 {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	sort.SliceStable(names, func(i, j int) bool { return cpu[names[i]] > cpu[names[j]] }) // ties by name: the same table each time
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, cpu[k]))
	}
	parts = append(parts, fmt.Sprintf("other %.2f; machine %.1f (%.0f%% busy)", cpu[Other], cpu[Machine], 100*busy))
	return strings.Join(parts, ", ")
}

// panel is one plot of the chart: ratios with one goal line.
type panel struct {
	title      string
	name       string // Ratio.Name
	protocols  []string
	goal       *Goal
	higherGood bool
}

var panels = []panel{
	{"SPDY route ÷ kube-apiserver's path, throughput", "throughput ÷ kube-apiserver's path", []string{"spdy"}, goalVsAPIServer, true},
	{"recorded ÷ unrecorded throughput", "recorded ÷ unrecorded throughput", protocols, goalRecorded, true},
	{"exec-proxy CPU/GiB ÷ bare TLS relay's, SPDY", "exec-proxy CPU/GiB ÷ TLS relay CPU/GiB", []string{"spdy"}, goalCPU["spdy"], false},
	{"exec-proxy CPU/GiB ÷ bare TLS relay's, WebSocket", "exec-proxy CPU/GiB ÷ TLS relay CPU/GiB", []string{"websocket"}, goalCPU["websocket"], false},
}

// chartData is one block per panel: a row per protocol and direction, with the paired median and
// interval at each exec-proxy configuration.
func chartData(r *Result) string {
	var b strings.Builder
	for _, p := range panels {
		for _, protocol := range p.protocols {
			for _, dir := range directions {
				fmt.Fprintf(&b, "%q", dir+" "+protocol)
				for _, c := range r.Configs {
					x, ok := r.find(p.name, protocol, dir, c.Name)
					if !ok {
						fmt.Fprint(&b, " - - -")
						continue
					}
					fmt.Fprintf(&b, " %.3f %.3f %.3f", x.Paired.Median, x.Paired.Low, x.Paired.High)
				}
				b.WriteString("\n")
			}
		}
		b.WriteString("\n\n")
	}
	return b.String()
}

// find is the ratio named name of exec-proxy's route at configuration config.
func (r *Result) find(name, protocol, dir, config string) (Ratio, bool) {
	for _, x := range r.Ratios {
		if x.Name == name && x.Protocol == protocol && x.Direction == dir && x.Config == config {
			return x, true
		}
	}
	return Ratio{}, false
}

// chartScript draws the panels from dat into png, each with its goal as a red line.
func chartScript(r *Result, dat, png, machine string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `set terminal pngcairo size 1400,900 font "sans,10"
set output %q
set multiplot layout 2,2 title "exec-proxy, issue 28's goals: bars are the paired median over %d rounds, whiskers its 95%% bootstrap interval; the red line is the goal\n%s"
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set key top left
`, png, r.Rounds, machine)
	for i, p := range panels {
		word := map[bool]string{true: "at least", false: "at most"}[p.higherGood]
		fmt.Fprintf(&b, "unset arrow\nunset label\nset yrange [0:%.2f]\n", max(1.5, p.goal.Value*1.4))
		fmt.Fprintf(&b, "set title \"%s (goal: %s %.2f×)\"\n", p.title, word, p.goal.Value)
		fmt.Fprintf(&b, "set arrow from graph 0, first %.2f to graph 1, first %.2f nohead lc rgb \"red\" dt 2 lw 2\n", p.goal.Value, p.goal.Value)
		fmt.Fprintf(&b, "set label \"goal %s %.2f×\" at graph 0.99, first %.2f right offset 0,0.6 tc rgb \"red\"\n", map[bool]string{true: "≥", false: "≤"}[p.higherGood], p.goal.Value, p.goal.Value)
		fmt.Fprintf(&b, "plot %q index %d using 2:3:4:xtic(1) title %q", dat, i, r.Configs[0].Name)
		for j, c := range r.Configs[1:] {
			fmt.Fprintf(&b, ", '' index %d using %d:%d:%d title %q", i, 5+3*j, 6+3*j, 7+3*j, c.Name)
		}
		b.WriteString("\n")
	}
	b.WriteString("unset multiplot\n")
	return b.String()
}

// Chart draws out/ratios.png (data in out/ratios.dat) with gnuplot.
func Chart(r *Result, out, machine string) error {
	dat := filepath.Join(out, "ratios.dat")
	if err := os.WriteFile(dat, []byte(chartData(r)), 0o644); err != nil {
		return err
	}
	cmd := exec.Command("gnuplot")
	cmd.Stdin = strings.NewReader(chartScript(r, dat, filepath.Join(out, "ratios.png"), machine))
	if outp, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gnuplot (hack/install-deps.sh installs it): %w\n%s", err, outp)
	}
	return nil
}
