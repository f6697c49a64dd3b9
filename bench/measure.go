package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

type counter struct{ n atomic.Int64 }

func (c *counter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// streamCommand writes n bytes (a multiple of 64 KiB) of printable text, so that a recording
// stores about as much as was sent, in 64 KiB writes: busybox's head and yes alone write in small
// pieces and would measure the container, not the path.
func streamCommand(n int64) []string {
	return []string{"sh", "-c", fmt.Sprintf(`yes "$(head -c 16383 /dev/zero | tr '\0' a)" | dd bs=65536 count=%d iflag=fullblock 2>/dev/null`, n/65536)}
}

// download streams n bytes from the container to the client and returns the rate in MiB/s.
func download(ctx context.Context, p path, protocol string, n int64) (float64, error) {
	out := &counter{}
	start := time.Now()
	if err := p.run(ctx, protocol, streamCommand(n), nil, out); err != nil {
		return 0, fmt.Errorf("%s %s download: %w", p.name, protocol, err)
	}
	elapsed := time.Since(start)
	if out.n.Load() != n {
		return 0, fmt.Errorf("%s %s download: %d bytes arrived of %d", p.name, protocol, out.n.Load(), n)
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
