package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/exec-proxy/exec-proxy/bench/apf"
	"github.com/exec-proxy/exec-proxy/bench/concurrent"
	"github.com/exec-proxy/exec-proxy/bench/idle"
	"github.com/exec-proxy/exec-proxy/bench/idleexec"
	"github.com/exec-proxy/exec-proxy/bench/keystroke"
	"github.com/exec-proxy/exec-proxy/bench/setup"
	"github.com/exec-proxy/exec-proxy/bench/throughput"
)

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
	if r.Throughput == nil {
		return nil // -parts without throughput: nothing to chart
	}
	return throughput.Chart(r.Throughput, out, r.Machine)
}

// writeTable writes the figures of the parts measured.
func writeTable(buf *bytes.Buffer, r *Results) {
	fmt.Fprintf(buf, "exec-proxy benchmark, %s, %s\n", r.Date, r.Machine)
	if r.Throughput != nil {
		throughput.WriteTable(buf, r.Throughput)
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
	if r.Keystroke != nil {
		keystroke.WriteTable(buf, r.Keystroke)
	}
	if r.PortForwardSetup != nil {
		setup.WriteTable(buf, r.PortForwardSetup)
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

// merge combines the results.json of runs of separate parts, in the order given, a later run's part
// replacing an earlier one's, so that one report shows figures measured one part at a time. The
// throughput part's figures and ratios are computed again from its transfers.
func merge(files []string) (*Results, error) {
	all := map[string]json.RawMessage{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var parts map[string]json.RawMessage
		if err := json.Unmarshal(data, &parts); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for k, v := range parts {
			var t Throttle // a struct, not a pointer: zero when its part did not run
			if string(v) == "null" || k == "throttle" && json.Unmarshal(v, &t) == nil && t.Starts == 0 {
				continue
			}
			all[k] = v
		}
	}
	data, err := json.Marshal(all)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	if r.Throughput != nil {
		throughput.Resummarize(r.Throughput) // ratios added since the transfers were measured
	}
	return &r, nil
}
