package apf

import (
	"sort"
	"strconv"
	"strings"

	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

// Latency is one reader's reads under one condition, in ms.
type Latency struct {
	P50   float64 `json:"p50ms"`
	P99   float64 `json:"p99ms"`
	Count int     `json:"reads"`
}

// sumByLabel sums the samples of metric name in Prometheus text by the value of label ("" for
// samples without it, or when label is "").
func sumByLabel(text, name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue // a comment, another metric, or one whose name only starts with name
		}
		var labels map[string]string
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			labels, rest = parseLabels(rest[1:end]), rest[end+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		out[labels[label]] += v
	}
	return out
}

// parseLabels reads `a="x",b="y"`, with the text format's escapes in values.
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		key, rest, ok := strings.Cut(s, `="`)
		if !ok {
			break
		}
		var value strings.Builder
		i := 0
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
			}
			value.WriteByte(rest[i])
		}
		out[strings.TrimSpace(key)] = value.String()
		s = strings.TrimPrefix(rest[min(i+1, len(rest)):], ",")
	}
	return out
}

// pairedReads summarizes one reader's batches: with the sessions held and without, batch b of
// each a pair. It returns the pooled percentiles of each and, over the pairs, the median of
// (held batch's median − its pair's) with its bootstrap interval.
func pairedReads(held, notHeld [][]float64) (Latency, Latency, stats.Interval) {
	pooled := func(batches [][]float64) Latency {
		var all []float64
		for _, b := range batches {
			all = append(all, b...)
		}
		if len(all) == 0 {
			return Latency{}
		}
		sort.Float64s(all)
		return Latency{P50: stats.Percentile(all, 50), P99: stats.Percentile(all, 99), Count: len(all)}
	}
	var diffs []float64
	for b := range min(len(held), len(notHeld)) {
		if len(held[b]) == 0 || len(notHeld[b]) == 0 {
			continue
		}
		diffs = append(diffs, stats.Summarize(held[b]).Median-stats.Summarize(notHeld[b]).Median)
	}
	return pooled(held), pooled(notHeld), stats.BootstrapMedian(diffs, 10000)
}
