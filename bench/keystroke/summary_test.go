package keystroke

import (
	"bytes"
	"strings"
	"testing"

	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

func TestCompare(t *testing.T) {
	same := func(v float64, n int) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = v
		}
		return xs
	}
	for _, c := range []struct {
		name             string
		cases            []Case
		wantP50, wantP99 []float64 // paired differences per round
		wantGoals        [2]string // p50's and p99's verdicts ("" for no goal)
		wantBulk         [2]float64
	}{
		{
			name: "idle, within both goals",
			cases: []Case{
				{Path: "route", Kubectl: "kubectl.1.28", Mode: "-it", Load: "idle", P50Ms: []float64{0.6, 0.7}, P99Ms: []float64{1.2, 1.5}},
				{Path: "kube-apiserver", Kubectl: "kubectl.1.28", Mode: "-it", Load: "idle", P50Ms: []float64{0.5, 0.6}, P99Ms: []float64{1.0, 1.1}},
				// Another mode and kubectl are not paired with these.
				{Path: "kube-apiserver", Kubectl: "kubectl.1.28", Mode: "-i", Load: "idle", P50Ms: []float64{9, 9}, P99Ms: []float64{9, 9}},
				{Path: "kube-apiserver", Kubectl: "kubectl.1.33", Mode: "-it", Load: "idle", P50Ms: []float64{9, 9}, P99Ms: []float64{9, 9}},
			},
			wantP50: []float64{0.6 - 0.5, 0.7 - 0.6}, wantP99: []float64{1.2 - 1.0, 1.5 - 1.1},
			wantGoals: [2]string{"met", "met"},
		},
		{
			name: "idle, p50 beyond its goal in every round",
			cases: []Case{
				{Path: "route", Kubectl: "kubectl.1.33", Mode: "-i", Load: "idle", P50Ms: same(1.0, 10), P99Ms: same(2.0, 10)},
				{Path: "kube-apiserver", Kubectl: "kubectl.1.33", Mode: "-i", Load: "idle", P50Ms: same(0.5, 10), P99Ms: same(2.0, 10)},
			},
			wantP50: same(0.5, 10), wantP99: same(0, 10),
			wantGoals: [2]string{"not met", "met"},
		},
		{
			name: "loaded: p99 only, bulk rates beside",
			cases: []Case{
				{Path: "route", Kubectl: "kubectl.1.33", Mode: "-i", Load: "loaded", P50Ms: []float64{1, 1, 1}, P99Ms: []float64{30, 20, 25}, BulkMiBps: []float64{100, 120, 110}},
				{Path: "kube-apiserver", Kubectl: "kubectl.1.33", Mode: "-i", Load: "loaded", P50Ms: []float64{1, 1, 1}, P99Ms: []float64{25, 25, 25}, BulkMiBps: []float64{130, 140, 150}},
			},
			wantP50: []float64{0, 0, 0}, wantP99: []float64{5, -5, 0},
			wantGoals: [2]string{"", "not shown"},
			wantBulk:  [2]float64{110, 140},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := compare(c.cases)
			if len(cs) != 1 {
				t.Fatalf("%d comparisons, want 1: %+v", len(cs), cs)
			}
			got := cs[0]
			near := func(a, b []float64) bool {
				if len(a) != len(b) {
					return false
				}
				for i := range a {
					if d := a[i] - b[i]; d > 1e-9 || d < -1e-9 {
						return false
					}
				}
				return true
			}
			if !near(got.P50.Rounds, c.wantP50) || !near(got.P99.Rounds, c.wantP99) {
				t.Errorf("differences p50 %v, p99 %v; want %v, %v", got.P50.Rounds, got.P99.Rounds, c.wantP50, c.wantP99)
			}
			for i, g := range []*Goal{got.P50.Goal, got.P99.Goal} {
				v := ""
				if g != nil {
					v = g.Verdict
				}
				if v != c.wantGoals[i] {
					t.Errorf("goal %d: %q, want %q", i, v, c.wantGoals[i])
				}
			}
			if b := [2]float64{got.Route.BulkMiBps, got.APIServer.BulkMiBps}; b != c.wantBulk {
				t.Errorf("bulk %v, want %v", b, c.wantBulk)
			}
			if want := stats.Summarize(c.cases[0].P50Ms).Median - stats.Summarize(c.cases[1].P50Ms).Median; got.P50.OfMedians != want {
				t.Errorf("p50 difference of medians %v, want %v", got.P50.OfMedians, want)
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	cs := cases()
	for i := range cs {
		c := &cs[i]
		c.P50Ms, c.P99Ms = []float64{0.5, 0.6}, []float64{1, 2}
		if c.Path == "route" {
			c.P50Ms = []float64{0.55, 0.7}
		}
		if c.Load == "loaded" {
			c.BulkMiBps = []float64{123, 125}
		}
	}
	r := &Result{Echoes: 300, PauseMs: [2]float64{5, 15}, Rounds: 2, Cases: cs, Comparisons: compare(cs)}
	if len(r.Comparisons) != 8 {
		t.Fatalf("%d comparisons, want 8 (2 protocols × 2 modes × 2 loads)", len(r.Comparisons))
	}
	var buf bytes.Buffer
	WriteTable(&buf, r)
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 10 {
		t.Fatalf("%d lines, want a title, a header and 8 rows:\n%s", len(lines), out)
	}
	for _, want := range []string{
		"300 per session, 5–15 ms apart; 2 paired rounds",
		"kubectl.1.28  SPDY       -it   idle    0.550 / 1.000", // the route's nearest-rank median of 0.55 and 0.7
		"+0.050 [+0.050, +0.100]; +0.050  ≤ +0.15: met",
		"≤ +0.50: met",
		"≤ +0.00: met",
		"123 / 123",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
