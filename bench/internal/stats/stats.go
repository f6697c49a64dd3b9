// Package stats summarizes the bench's repeated measurements and orders its rounds, so that the
// machine's drift is shared among what is compared.
package stats

import (
	"math/rand/v2"
	"sort"
)

// Stats are a figure over repeated runs.
type Stats struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// Summarize is the min, median and max of xs, which it leaves in their order.
func Summarize(xs []float64) Stats {
	if len(xs) == 0 {
		return Stats{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return Stats{Min: s[0], Median: Percentile(s, 50), Max: s[len(s)-1]}
}

// Percentile of sorted xs, nearest rank.
func Percentile(sorted []float64, p float64) float64 {
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Turned is paths rotated by i: the first path of round i is paths[i mod len].
func Turned[T any](paths []T, i int) []T {
	i %= len(paths)
	return append(append([]T(nil), paths[i:]...), paths[:i]...)
}

// TurnedOrder is the indexes 0 to n-1 turned by round: the order in which round measures n cases.
func TurnedOrder(n, round int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	return Turned(order, round)
}

// Interval is a median with its 95% bootstrap interval.
type Interval struct {
	Median float64 `json:"median"`
	Low    float64 `json:"low95"`
	High   float64 `json:"high95"`
}

// BootstrapMedian is the median of xs with a 95% percentile bootstrap interval over resamples
// drawn with a fixed seed, so that the same samples give the same interval.
func BootstrapMedian(xs []float64, resamples int) Interval {
	if len(xs) == 0 {
		return Interval{}
	}
	median := func(s []float64) float64 { // as stats.Summarize's
		sort.Float64s(s)
		return Percentile(s, 50)
	}
	r := rand.New(rand.NewPCG(22, 22))
	medians := make([]float64, resamples)
	s := make([]float64, len(xs))
	for i := range medians {
		for j := range s {
			s[j] = xs[r.IntN(len(xs))]
		}
		medians[i] = median(s)
	}
	sort.Float64s(medians)
	return Interval{Median: median(append([]float64(nil), xs...)), Low: Percentile(medians, 2.5), High: Percentile(medians, 97.5)}
}

// Verdicts on a goal: met only when the whole interval clears it.
const (
	Met      = "met"
	NotMet   = "not met"
	NotShown = "not shown" // no samples, or an interval on both sides of the goal
)

// Verdict on iv against goal: at least goal when atLeast, else at most goal. n is the number of
// samples iv stands on. Met only when the whole interval clears the goal, not met when none of it
// does; an interval on both sides shows neither.
func Verdict(iv Interval, n int, goal float64, atLeast bool) string {
	clears := func(x float64) bool {
		if atLeast {
			return x >= goal
		}
		return x <= goal
	}
	switch {
	case n == 0:
		return NotShown
	case clears(iv.Low) && clears(iv.High):
		return Met
	case !clears(iv.Low) && !clears(iv.High):
		return NotMet
	}
	return NotShown
}
