package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/exec-proxy/exec-proxy/bench/apf"
	"github.com/exec-proxy/exec-proxy/bench/concurrent"
	"github.com/exec-proxy/exec-proxy/bench/idle"
	"github.com/exec-proxy/exec-proxy/bench/idleexec"
	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

// baselines are what each path is compared with.
var baselines = []string{"kube-apiserver", "direct kubelet"}

func report(r *Results, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var table bytes.Buffer
	writeTable(&table, r)
	fmt.Print(table.String())
	if err := os.WriteFile(filepath.Join(out, "results.txt"), table.Bytes(), 0o644); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "results.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	if len(r.Throughput) == 0 && len(r.Setup) == 0 {
		return nil // -parts without throughput: nothing to chart
	}
	return chart(r, out)
}

func (r *Results) throughput(p, protocol, direction string) (Throughput, bool) {
	for _, t := range r.Throughput {
		if t.Path == p && t.Protocol == protocol && t.Direction == direction {
			return t, true
		}
	}
	return Throughput{}, false
}

func (r *Results) setup(p, protocol string) (Setup, bool) {
	for _, s := range r.Setup {
		if s.Path == p && s.Protocol == protocol {
			return s, true
		}
	}
	return Setup{}, false
}

// rangeVsAPIServer is p's round-by-round ratio to kube-apiserver's path: median, min and max.
func (r *Results) rangeVsAPIServer(p, protocol, direction string) stats.Stats {
	t, _ := r.throughput(p, protocol, direction)
	if t.VsAPIServer != nil {
		return *t.VsAPIServer
	}
	api, _ := r.throughput("kube-apiserver", protocol, direction)
	v := t.MiBps.Median / api.MiBps.Median
	return stats.Stats{Min: v, Median: v, Max: v}
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// writeTable writes the figures of the parts measured.
func writeTable(buf *bytes.Buffer, r *Results) {
	fmt.Fprintf(buf, "exec-proxy benchmark, %s, %s\n", r.Date, r.Machine)
	if len(r.Throughput) > 0 || len(r.Setup) > 0 {
		writeRates(buf, r)
	}
	if len(r.Admission) > 0 {
		writeAdmission(buf, r.Admission)
	}
	if r.APF != nil {
		apf.WriteTable(buf, r.APF)
	}
	if r.IdleExec != nil {
		idleexec.WriteTable(buf, r.IdleExec)
	}
	if r.Concurrent != nil {
		concurrent.WriteTable(buf, r.Concurrent)
	}
	if r.Idle != nil {
		idle.WriteTable(buf, r.Idle)
	}
	if t := r.Throttle; t.Starts > 0 {
		fmt.Fprintf(buf, "Throttle: one session at %d B/s measured %.0f B/s (%.3f× the limit); %d session starts at once with burst %d: %d accepted (one start went to the readiness check, so %d expected), %d refused with 429, %d other errors\n",
			t.ConfiguredBytesPerSec, t.MeasuredBytesPerSec, t.Ratio, t.Starts, t.Burst, t.Accepted, t.Burst-1, t.Refused429, t.OtherErrors)
	}
}

func writeRates(buf *bytes.Buffer, r *Results) {
	buf.WriteString("\n")
	w := tabwriter.NewWriter(buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "THROUGHPUT MiB/s\tPROTOCOL\tPATH\tMIN\tMEDIAN\tMAX\t÷ KUBE-APISERVER (MIN–MAX)\t÷ DIRECT\tCPU s/GiB")
	for _, t := range r.Throughput {
		direct, _ := r.throughput("direct kubelet", t.Protocol, t.Direction)
		fmt.Fprintf(w, "%s\t%s\t%s\t%.0f\t%.0f\t%.0f\t%s\t%s\t%s\n", t.Direction, t.Protocol, t.Path, t.MiBps.Min, t.MiBps.Median, t.MiBps.Max,
			r.vsAPIServer(t), ratio(t.MiBps.Median, direct.MiBps.Median), cpuCell(t))
	}
	fmt.Fprintln(w, "\t\t\t\t\t\t\t\t")
	fmt.Fprintln(w, "SETUP exec -- true\tPROTOCOL\tPATH\tP50 ms\tP99 ms\tSESSIONS\tP50 ÷ KUBE-APISERVER\tP99 ÷ KUBE-APISERVER\t")
	for _, s := range r.Setup {
		api, _ := r.setup("kube-apiserver", s.Protocol)
		fmt.Fprintf(w, "setup\t%s\t%s\t%.1f\t%.1f\t%d\t%s\t%s\t\n", s.Protocol, s.Path, s.P50, s.P99, s.Count, ratio(s.P50, api.P50), ratio(s.P99, api.P99))
	}
	w.Flush()
	for _, f := range r.Failed {
		fmt.Fprintf(buf, "Failed and run once more: %s\n", f)
	}
}

func writeAdmission(buf *bytes.Buffer, as []AdmissionSetup) {
	buf.WriteString("\n")
	w := tabwriter.NewWriter(buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ADMISSION exec -- true\tPROTOCOL\tNO POLICY P50/P99 ms\tONE VAP P50/P99 ms\tSESSIONS EACH\tADDED P50 ms, BATCH MEDIANS (MIN–MAX)\tIN EXEC-PROXY ms/SESSION, NO POLICY → ONE VAP\t")
	for _, a := range as {
		fmt.Fprintf(w, "exec-proxy\t%s\t%.1f / %.1f\t%.1f / %.1f\t%d\t%.2f (%.2f–%.2f)\t%.3f → %.3f\t\n", a.Protocol, a.NoPolicy.P50, a.NoPolicy.P99,
			a.WithPolicy.P50, a.WithPolicy.P99, a.WithPolicy.Count, a.AddedP50.Median, a.AddedP50.Min, a.AddedP50.Max, a.ServerMsNoPolicy, a.ServerMsWithPolicy)
	}
	w.Flush()
}

// vsAPIServer is t's rate over kube-apiserver's, round by round: the median, then the range.
func (r *Results) vsAPIServer(t Throughput) string {
	if v := t.VsAPIServer; v != nil {
		return fmt.Sprintf("%.2f× (%.2f–%.2f)", v.Median, v.Min, v.Max)
	}
	api, _ := r.throughput("kube-apiserver", t.Protocol, t.Direction)
	return ratio(t.MiBps.Median, api.MiBps.Median)
}

// cpuCell lists the CPU seconds per GiB of the path's processes, then of the whole machine.
func cpuCell(t Throughput) string {
	var parts []string
	for k, v := range t.CPUPerGiB {
		if k != "machine" {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, v))
		}
	}
	sort.Strings(parts)
	if v, ok := t.CPUPerGiB["machine"]; ok {
		parts = append(parts, fmt.Sprintf("machine %.1f (%.0f%% busy)", v, 100*t.MachineBusy))
	}
	return strings.Join(parts, ", ")
}

// chart draws the ratios to kube-apiserver's path with gnuplot: throughput (higher is better) and
// setup latency (lower is better).
func chart(r *Results, out string) error {
	var data bytes.Buffer
	for _, protocol := range []string{"spdy", "websocket"} {
		for _, dir := range []string{"download", "upload"} {
			ep, rec := r.rangeVsAPIServer("exec-proxy", protocol, dir), r.rangeVsAPIServer("exec-proxy + audit + recording", protocol, dir)
			fmt.Fprintf(&data, "\"%s %s\\nthroughput\" %.3f %.3f %.3f %.3f %.3f %.3f\n", dir, protocol,
				ep.Median, ep.Min, ep.Max, rec.Median, rec.Min, rec.Max)
		}
		api, _ := r.setup("kube-apiserver", protocol)
		ep, _ := r.setup("exec-proxy", protocol)
		rec, _ := r.setup("exec-proxy + audit + recording", protocol)
		e, c := ep.P50/api.P50, rec.P50/api.P50
		fmt.Fprintf(&data, "\"setup p50 %s\\nlatency\" %.3f %.3f %.3f %.3f %.3f %.3f\n", protocol, e, e, e, c, c, c)
	}
	dat := filepath.Join(out, "ratios.dat")
	if err := os.WriteFile(dat, data.Bytes(), 0o644); err != nil {
		return err
	}
	script := fmt.Sprintf(`set terminal pngcairo size 1100,560 font "sans,10"
set bmargin 5
set output %q
set title "exec-proxy ÷ kube-apiserver's own pods/exec (throughput: higher is better, bars span the rounds; setup latency: lower is better)\n%s"
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set grid ytics
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2
set key outside top center horizontal
plot %q using 2:3:4:xtic(1) title "aggregated route → exec-proxy", '' using 5:6:7 title "… with session audit and recording"
`, filepath.Join(out, "ratios.png"), r.Machine, dat)
	cmd := exec.Command("gnuplot")
	cmd.Stdin = strings.NewReader(script)
	if outp, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gnuplot (hack/install-deps.sh installs it): %w\n%s", err, outp)
	}
	return nil
}

// machine names the CPU, cores, memory and kernel.
func machine() string {
	model, mem := "unknown CPU", ""
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "model name") {
				model = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kib int64
		fmt.Sscanf(strings.SplitN(string(data), "\n", 2)[0], "MemTotal: %d kB", &kib)
		mem = fmt.Sprintf(", %.0f GiB", float64(kib)/(1<<20))
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%s, %d cores%s, Linux %s, %s", model, runtime.NumCPU(), mem, strings.TrimSpace(string(kernel)), runtime.Version())
}
