package stats

import (
	"reflect"
	"slices"
	"testing"
)

func TestTurned(t *testing.T) {
	paths := []string{"a", "b", "c"}
	for _, c := range []struct {
		round int
		want  []string
	}{{0, []string{"a", "b", "c"}}, {1, []string{"b", "c", "a"}}, {2, []string{"c", "a", "b"}}, {4, []string{"b", "c", "a"}}} {
		if got := Turned(paths, c.round); !reflect.DeepEqual(got, c.want) {
			t.Errorf("round %d: %v, want %v", c.round, got, c.want)
		}
	}
	if !reflect.DeepEqual(paths, []string{"a", "b", "c"}) {
		t.Errorf("Turned changed its argument: %v", paths)
	}
}

func TestBootstrapMedian(t *testing.T) {
	for _, c := range []struct {
		name string
		xs   []float64
		want Interval
	}{
		{"none", nil, Interval{}},
		{"one", []float64{3}, Interval{3, 3, 3}},
		{"all alike", []float64{2, 2, 2, 2}, Interval{2, 2, 2}},
		// The lower median of 10 draws is at most 2 with 3.3% (5 draws of 2 at most, binomially),
		// at most 7 with 95.3% and at most 8 with 99.4%.
		{"spread", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, Interval{Median: 5, Low: 2, High: 8}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := BootstrapMedian(c.xs, 10000); got != c.want {
				t.Errorf("BootstrapMedian(%v) = %+v, want %+v", c.xs, got, c.want)
			}
		})
	}
}

func TestVerdict(t *testing.T) {
	for _, c := range []struct {
		name    string
		iv      Interval
		n       int
		goal    float64
		atLeast bool
		want    string
	}{
		{"no samples", Interval{}, 0, 0.95, true, NotShown},
		{"whole interval above", Interval{Median: 0.99, Low: 0.96, High: 1.02}, 10, 0.95, true, Met},
		{"low end on the goal", Interval{Median: 0.99, Low: 0.95, High: 1.02}, 10, 0.95, true, Met},
		{"median above, low end below", Interval{Median: 0.97, Low: 0.94, High: 0.99}, 10, 0.95, true, NotShown},
		{"whole interval below a floor", Interval{Median: 0.8, Low: 0.7, High: 0.89}, 10, 0.95, true, NotMet},
		{"whole interval below a ceiling", Interval{Median: 0.01, Low: 0.005, High: 0.015}, 3, 0.02, false, Met},
		{"high end on a ceiling", Interval{Median: 0.01, Low: 0.005, High: 0.02}, 3, 0.02, false, Met},
		{"median under a ceiling, high end over", Interval{Median: 0.01, Low: 0.005, High: 0.03}, 3, 0.02, false, NotShown},
		{"median over a ceiling, low end under", Interval{Median: 0.2, Low: 0.15, High: 0.3}, 10, 0.15, false, NotShown},
		{"above a ceiling", Interval{Median: 0.03, Low: 0.025, High: 0.04}, 3, 0.02, false, NotMet},
		{"a ceiling of zero, all under", Interval{Median: -2, Low: -3, High: -1}, 10, 0, false, Met},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Verdict(c.iv, c.n, c.goal, c.atLeast); got != c.want {
				t.Errorf("Verdict(%+v, %d, %v, %v) = %q, want %q", c.iv, c.n, c.goal, c.atLeast, got, c.want)
			}
		})
	}
}

func TestTurnedOrder(t *testing.T) {
	for _, c := range []struct {
		n, round int
		want     []int
	}{{3, 0, []int{0, 1, 2}}, {3, 1, []int{1, 2, 0}}, {3, 4, []int{1, 2, 0}}, {1, 7, []int{0}}} {
		if got := TurnedOrder(c.n, c.round); !slices.Equal(got, c.want) {
			t.Errorf("TurnedOrder(%d, %d) = %v, want %v", c.n, c.round, got, c.want)
		}
	}
}
