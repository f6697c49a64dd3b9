package setup

import (
	"bytes"
	"strings"
	"testing"

	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

func TestVerdict(t *testing.T) {
	for _, c := range []struct {
		name string
		iv   stats.Interval
		max  float64
		want string
	}{
		{"whole interval within", stats.Interval{Median: 0.5, Low: 0.2, High: 1.5}, 2, "met"},
		{"high end on the bound", stats.Interval{Median: 1, Low: 0.5, High: 2}, 2, "met"},
		{"straddles", stats.Interval{Median: 1.9, Low: 1, High: 2.5}, 2, "not shown"},
		{"low end on the bound", stats.Interval{Median: 3, Low: 2, High: 4}, 2, "not shown"},
		{"whole interval beyond", stats.Interval{Median: 3, Low: 2.1, High: 4}, 2, "not met"},
		{"route faster than kube-apiserver", stats.Interval{Median: -0.4, Low: -0.6, High: -0.1}, 0, "met"},
		{"route slower than kube-apiserver", stats.Interval{Median: 0.4, Low: 0.1, High: 0.6}, 0, "not met"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := verdict(c.iv, c.max); got != c.want {
				t.Errorf("verdict(%+v, %v) = %q, want %q", c.iv, c.max, got, c.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	// Ten rounds: direct 5 ms, kube-apiserver 2 ms more, the route 1 ms more than that with the
	// webhook and 0.5 ms less without it; p99s twice the p50s. Round 3 is slow on every path.
	rounds := func(v float64) []float64 {
		xs := make([]float64, 10)
		for i := range xs {
			xs[i] = v
			if i == 3 {
				xs[i] += 10
			}
		}
		return xs
	}
	kase := func(path string, p50 float64) Case {
		return Case{Path: path, P50Ms: rounds(p50), P99Ms: rounds(2 * p50)}
	}
	res := &Result{Cases: []Case{kase(Direct, 5), kase(APIServer, 7), kase(RouteOn, 8), kase(RouteOff, 7.5)}}
	summarize(res)
	if c := res.Cases[2]; c.P50 != 8 || c.P99 != 16 {
		t.Errorf("route on: p50 %v, p99 %v; want the medians over rounds, 8 and 16", c.P50, c.P99)
	}
	for _, c := range []struct {
		name, pct   string
		wantMs      float64 // every round's difference: the slow round cancels
		wantVerdict string  // "" for no goal
	}{
		{"added: kube-apiserver − direct", "p50", 2, ""},
		{"added: kube-apiserver − direct", "p99", 4, ""},
		{"added: route, webhook on − direct", "p50", 3, ""},
		{"added: route, webhook off − direct", "p99", 5, ""},
		{"route's added (webhook on) − kube-apiserver's", "p50", 1, "not met"},
		{"route's added (webhook on) − kube-apiserver's", "p99", 2, "not met"},
		{"webhook on − off (route)", "p50", 0.5, "met"},
		{"webhook on − off (route)", "p99", 1, ""},
	} {
		t.Run(c.name+" "+c.pct, func(t *testing.T) {
			var got *Comparison
			for i := range res.Comparisons {
				if res.Comparisons[i].Name == c.name && res.Comparisons[i].Percentile == c.pct {
					got = &res.Comparisons[i]
				}
			}
			if got == nil {
				t.Fatal("missing")
			}
			if len(got.RoundsMs) != 10 || got.Paired.Median != c.wantMs || got.Paired.Low != c.wantMs || got.Paired.High != c.wantMs || got.OfMedians != c.wantMs {
				t.Errorf("rounds %v, paired %+v, of medians %v; want %v every round", got.RoundsMs, got.Paired, got.OfMedians, c.wantMs)
			}
			switch {
			case c.wantVerdict == "" && got.Goal != nil:
				t.Errorf("goal %+v, want none", got.Goal)
			case c.wantVerdict != "" && (got.Goal == nil || got.Goal.Verdict != c.wantVerdict):
				t.Errorf("goal %+v, want %q", got.Goal, c.wantVerdict)
			}
		})
	}
}

func TestPaired(t *testing.T) {
	terms := []term{{RouteOn, 1}, {Direct, -1}}
	for _, c := range []struct {
		name   string
		series [][]float64
		want   []float64
	}{
		{"round by round", [][]float64{{3, 5}, {1, 1}}, []float64{2, 4}},
		{"rounds one side lacks are left out", [][]float64{{3, 5, 9}, {1, 1}}, []float64{2, 4}},
		{"nothing measured", [][]float64{nil, nil}, []float64{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := paired(terms, c.series)
			if len(got) != len(c.want) {
				t.Fatalf("paired = %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("paired = %v, want %v", got, c.want)
				}
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	res := &Result{Port: Port, Sessions: 100, WarmSessions: warmSessions, Rounds: 2, Webhook: Received{Events: 412, RouteSessions: 206},
		Cases: []Case{{Path: Direct, P50Ms: []float64{5, 5}, P99Ms: []float64{9, 9}}, {Path: APIServer, P50Ms: []float64{7, 7}, P99Ms: []float64{12, 12}},
			{Path: RouteOn, P50Ms: []float64{8, 8}, P99Ms: []float64{11, 11}}, {Path: RouteOff, P50Ms: []float64{7.5, 7.5}, P99Ms: []float64{10, 10}}}}
	summarize(res)
	var buf bytes.Buffer
	WriteTable(&buf, res)
	out := buf.String()
	for _, want := range []string{
		"Port-forward setup", "demo:8080", "100 sessions per case",
		"route, webhook on   8.00  11.00",
		"route's added (webhook on) − kube-apiserver's  p50         +1.00 [+1.00, +1.00]   +1.00       ≤ +0.00: not met",
		"route's added (webhook on) − kube-apiserver's  p99         -1.00 [-1.00, -1.00]   -1.00       ≤ +0.00: met",
		"webhook on − off (route)                       p50         +0.50 [+0.50, +0.50]   +0.50       ≤ +2.00: met",
		"412 events received for 206 route sessions", "0 while it was off",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
