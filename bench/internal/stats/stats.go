// Package stats summarizes the bench's repeated measurements and orders its rounds, so that the
// machine's drift is shared among what is compared.
package stats

import "sort"

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
