package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/exec-proxy/exec-proxy/bench/internal/workload"
)

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// download streams n bytes from the container to the client and returns the rate in MiB/s.
func download(ctx context.Context, p path, protocol string, n int64) (float64, error) {
	out := &workload.Counter{}
	start := time.Now()
	if err := p.run(ctx, protocol, workload.StreamCommand(n), nil, out); err != nil {
		return 0, fmt.Errorf("%s %s download: %w", p.name, protocol, err)
	}
	elapsed := time.Since(start)
	if out.Bytes() != n {
		return 0, fmt.Errorf("%s %s download: %d bytes arrived of %d", p.name, protocol, out.Bytes(), n)
	}
	return float64(n) / (1 << 20) / elapsed.Seconds(), nil
}

func cpuOf(cluster string, names []string) map[string]float64 {
	out := map[string]float64{}
	for _, name := range names {
		if c, err := cpuSeconds(cluster, name); err == nil {
			out[name] = c
		}
	}
	return out
}

// upload streams n bytes from the client into the container, as kubectl cp into a pod does, and
// returns the rate in MiB/s; the container counts what arrived.
func upload(ctx context.Context, p path, protocol string, n int64) (float64, error) {
	var out strings.Builder
	start := time.Now()
	if err := p.run(ctx, protocol, []string{"wc", "-c"}, io.LimitReader(zeros{}, n), &out); err != nil {
		return 0, fmt.Errorf("%s %s upload: %w", p.name, protocol, err)
	}
	elapsed := time.Since(start)
	if got, _ := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64); got != n {
		return 0, fmt.Errorf("%s %s upload: the container got %q bytes of %d", p.name, protocol, out.String(), n)
	}
	return float64(n) / (1 << 20) / elapsed.Seconds(), nil
}

// setup runs `true` k times, one after the other: each from the request to the exit code.
func setup(ctx context.Context, p path, protocol string, k int) ([]float64, error) {
	var ms []float64
	for i := 0; i < k; i++ {
		start := time.Now()
		if err := p.run(ctx, protocol, []string{"true"}, nil, io.Discard); err != nil {
			return nil, fmt.Errorf("%s %s exec true: %w", p.name, protocol, err)
		}
		ms = append(ms, float64(time.Since(start).Microseconds())/1000)
	}
	sort.Float64s(ms)
	return ms, nil
}
