package concurrent

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

func TestJain(t *testing.T) {
	for _, c := range []struct {
		name string
		xs   []float64
		want float64
	}{
		{"none", nil, 0},
		{"all zero", []float64{0, 0}, 0},
		{"equal", []float64{5, 5, 5, 5}, 1},
		{"one has everything", []float64{8, 0, 0, 0}, 0.25},
		{"half and half", []float64{2, 2, 0, 0}, 0.5},
		{"uneven", []float64{1, 2, 3}, 36.0 / 42},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Jain(c.xs); math.Abs(got-c.want) > 1e-12 {
				t.Errorf("Jain(%v) = %v, want %v", c.xs, got, c.want)
			}
		})
	}
}

func TestFigures(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := snapshot{at: t0, bytes: []int64{0, 1 << 20}, busy: 10, total: 20, clients: 2, servers: map[string]float64{"exec-proxy": 1}}
	b := snapshot{at: t0.Add(2 * time.Second), bytes: []int64{4 << 20, 5 << 20}, busy: 13.8, total: 24, clients: 3, servers: map[string]float64{"exec-proxy": 2, "kube-apiserver": 5}}
	r := figures(a, b)
	if r.Seconds != 2 || r.MiBps != 4 || r.Jain != 1 || len(r.SessionMiBps) != 2 {
		t.Errorf("figures = %+v, want 2 s, 4 MiB/s, Jain 1 over 2 sessions", r)
	}
	if math.Abs(r.MachineBusy-0.95) > 1e-9 || math.Abs(r.ClientShare-0.25) > 1e-9 {
		t.Errorf("busy %v, clients %v; want 0.95, 0.25", r.MachineBusy, r.ClientShare)
	}
	if r.ServerCores["exec-proxy"] != 0.5 || len(r.ServerCores) != 1 {
		t.Errorf("server cores %v, want exec-proxy 0.5 alone (kube-apiserver unread at the start)", r.ServerCores)
	}
}

// rounds are n rounds of one case at rate MiB/s and fairness jain, busy busy.
func rounds(n int, rate, jain, busy float64) []Round {
	var rs []Round
	for i := range n {
		d := float64(i%3-1) * 0.002 // a little spread, the same on every case
		rs = append(rs, Round{MiBps: rate * (1 + d), Jain: jain + d, MachineBusy: busy, ClientShare: 0.3})
	}
	return rs
}

func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		name            string
		route, api      float64 // MiB/s
		jain            float64
		rounds          int
		ratio, fairness string
	}{
		{"route as fast, fair", 1000, 1000, 0.99, 10, stats.Met, stats.Met},
		{"route 0.9×, unfair", 900, 1000, 0.90, 10, stats.NotMet, stats.NotMet},
		// Every paired ratio is 0.95: the interval is on the goal, which is "at least"; Jain's spreads below it.
		{"ratio on the goal, Jain across it", 950, 1000, 0.95, 10, stats.Met, stats.NotShown},
		{"no rounds", 0, 0, 0, 0, stats.NotShown, stats.NotShown},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := &Result{Cases: []Case{
				{Kubectl: "kubectl.1.28", Protocol: "SPDY", Path: "route", Rounds: rounds(c.rounds, c.route, c.jain, 0.5)},
				{Kubectl: "kubectl.1.28", Protocol: "SPDY", Path: "kube-apiserver", Rounds: rounds(c.rounds, c.api, 0.99, 0.5)},
			}}
			summarize(res)
			if len(res.Ratios) != 1 {
				t.Fatalf("%d ratios, want 1", len(res.Ratios))
			}
			if got := res.Ratios[0].Verdict; got != c.ratio {
				t.Errorf("aggregate verdict %q (paired %+v), want %q", got, res.Ratios[0].Paired, c.ratio)
			}
			if got := res.Cases[0].JainVerdict; got != c.fairness {
				t.Errorf("Jain verdict %q (%+v), want %q", got, res.Cases[0].Jain, c.fairness)
			}
			if c.rounds > 0 && math.Abs(res.Ratios[0].RatioOfMedians-c.route/c.api) > 1e-9 {
				t.Errorf("ratio of medians %v, want %v", res.Ratios[0].RatioOfMedians, c.route/c.api)
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	for _, c := range []struct {
		name string
		busy float64
		want []string
	}{
		{"spare CPU", 0.6, []string{"SPDY: route ÷ kube-apiserver's path 0.900", "goal ≥ 0.95×: not met", "kubectl.1.28  SPDY", "clients were not the bottleneck"}},
		{"saturated", 0.97, []string{"The machine was saturated", "the clients 30% of it"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := &Result{Sessions: 64, Rounds: 10, WindowSeconds: 10, Cases: []Case{
				{Kubectl: "kubectl.1.28", Protocol: "SPDY", Path: "route", Rounds: rounds(10, 900, 0.99, c.busy)},
				{Kubectl: "kubectl.1.28", Protocol: "SPDY", Path: "kube-apiserver", Rounds: rounds(10, 1000, 0.99, c.busy)},
			}}
			summarize(res)
			var buf bytes.Buffer
			WriteTable(&buf, res)
			for _, want := range c.want {
				if !strings.Contains(buf.String(), want) {
					t.Errorf("table lacks %q:\n%s", want, buf.String())
				}
			}
		})
	}
}
