package main

import (
	"context"
	"sort"

	"github.com/exec-proxy/exec-proxy/bench/internal/proc"
	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

// The machine's speed drifts while a benchmark runs (other tenants, the CPU's clock, the page
// cache), by more than the differences measured. So the paths are measured in rounds: each round
// measures every path once, one after the other, in an order that turns from round to round, and a
// ratio is taken between the paths of one round.

// pathSamples is what the rounds measured on one path over one protocol.
type pathSamples struct {
	down, up       []float64            // MiB/s, one per round
	cpuDown, cpuUp map[string][]float64 // CPU s/GiB of each run, by process and "machine"
	busyDown       []float64            // the machine's busy share during each run
	busyUp         []float64
	setupMs        []float64
	failed         []string // transfers that failed and were run again
}

// noUpload: the kubelet speaks WebSocket v4 only, which cannot close stdin alone.
func noUpload(p path, protocol string) bool {
	return p.name == "direct kubelet" && protocol == "websocket"
}

// measurePaths measures paths in rounds and adds the figures of those not yet in res.
func measurePaths(ctx context.Context, o options, paths []path, res *Results) error {
	clean := func() { removeRecordings(o.cluster) } // a recorded GiB need not stay on disk
	for _, protocol := range []string{"spdy", "websocket"} {
		got := map[string]*pathSamples{}
		for _, p := range paths {
			got[p.name] = &pathSamples{cpuDown: map[string][]float64{}, cpuUp: map[string][]float64{}}
		}
		for i := 0; i < o.runs; i++ {
			for _, p := range stats.Turned(paths, i) {
				if err := measureRound(ctx, o, p, protocol, got[p.name], clean); err != nil {
					return err
				}
			}
		}
		batches := min(10, o.sessions)
		for b := 0; b < batches; b++ {
			for _, p := range stats.Turned(paths, b) {
				n := o.sessions/batches + btoi(b < o.sessions%batches)
				logf("%s over %s: exec -- true ×%d (batch %d of %d)", p.name, protocol, n, b+1, batches)
				ms, err := setup(ctx, p, protocol, n)
				if err != nil {
					return err
				}
				got[p.name].setupMs = append(got[p.name].setupMs, ms...)
			}
		}
		addFigures(res, paths, protocol, got)
	}
	return nil
}

// measureRound is one round's download and upload on p.
func measureRound(ctx context.Context, o options, p path, protocol string, into *pathSamples, clean func()) error {
	logf("%s over %s: download %d MiB", p.name, protocol, o.download>>20)
	err := into.transfer(o.cluster, p, o.download, &into.down, into.cpuDown, &into.busyDown, func() (float64, error) {
		return download(ctx, p, protocol, o.download)
	})
	clean()
	if err != nil || noUpload(p, protocol) {
		return err
	}
	logf("%s over %s: upload %d MiB", p.name, protocol, o.upload>>20)
	return into.transfer(o.cluster, p, o.upload, &into.up, into.cpuUp, &into.busyUp, func() (float64, error) {
		return upload(ctx, p, protocol, o.upload)
	})
}

// transfer runs a transfer of n bytes on p (again if it fails once) and adds its rate to rates, the
// CPU seconds per GiB of p's processes and of the whole machine to cpu, and the machine's busy
// share to busy.
func (into *pathSamples) transfer(cluster string, p path, n int64, rates *[]float64, cpu map[string][]float64,
	busy *[]float64, run func() (float64, error)) error {
	before := cpuOf(cluster, p.cpu)
	busy0, total0 := machineCPU()
	rate, err := run()
	if err != nil {
		// Any path may fail a transfer now and then (kube-apiserver's own WebSocket path has cut a
		// GiB short): it is told in the results and run once more, rather than end the benchmark.
		logf("%v: once more", err)
		into.failed = append(into.failed, err.Error())
		before = cpuOf(cluster, p.cpu)
		busy0, total0 = machineCPU()
		if rate, err = run(); err != nil {
			return err
		}
	}
	busy1, total1 := machineCPU()
	gib := float64(n) / (1 << 30)
	*rates = append(*rates, rate)
	for name, c := range cpuOf(cluster, p.cpu) {
		cpu[name] = append(cpu[name], (c-before[name])/gib)
	}
	if total1 > total0 {
		cpu["machine"] = append(cpu["machine"], (busy1-busy0)/gib)
		*busy = append(*busy, (busy1-busy0)/(total1-total0))
	}
	return nil
}

// addFigures adds to res the figures of the paths it does not have yet, with their ratios to
// kube-apiserver's path round by round.
func addFigures(res *Results, paths []path, protocol string, got map[string]*pathSamples) {
	var apiDown, apiUp []float64
	if api := got["kube-apiserver"]; api != nil {
		apiDown, apiUp = api.down, api.up
	}
	for _, p := range paths {
		if _, done := res.setup(p.name, protocol); done {
			continue
		}
		g := got[p.name]
		res.Throughput = append(res.Throughput, Throughput{Path: p.name, Protocol: protocol, Direction: "download", MiBps: stats.Summarize(g.down),
			VsAPIServer: paired(g.down, apiDown), CPUPerGiB: medians(g.cpuDown), MachineBusy: stats.Summarize(g.busyDown).Median})
		if !noUpload(p, protocol) {
			res.Throughput = append(res.Throughput, Throughput{Path: p.name, Protocol: protocol, Direction: "upload", MiBps: stats.Summarize(g.up),
				VsAPIServer: paired(g.up, apiUp), CPUPerGiB: medians(g.cpuUp), MachineBusy: stats.Summarize(g.busyUp).Median})
		}
		res.Failed = append(res.Failed, g.failed...)
		ms := append([]float64(nil), g.setupMs...)
		sort.Float64s(ms)
		res.Setup = append(res.Setup, Setup{Path: p.name, Protocol: protocol, P50: stats.Percentile(ms, 50), P99: stats.Percentile(ms, 99), Count: len(ms)})
	}
}

// paired is the ratio of each round's rate to the baseline's in that round, over the rounds.
func paired(rates, baseline []float64) *stats.Stats {
	if len(baseline) != len(rates) || len(rates) == 0 {
		return nil
	}
	r := make([]float64, len(rates))
	for i := range rates {
		r[i] = rates[i] / baseline[i]
	}
	s := stats.Summarize(r)
	return &s
}

// machineCPU is the machine's busy and total CPU seconds so far, from /proc/stat.
func machineCPU() (busy, total float64) { return proc.MachineCPU() }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
