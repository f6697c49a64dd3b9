//go:build e2e

package e2e

import (
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
)

// A bandwidth-limited session whose command writes far ahead of the limit once lost the end of its
// output and its exit code: the kubelet closed with that output still in its socket, and the
// client's next keep-alive, relayed to the closed socket, made the kubelet's kernel reset the
// connection and drop it. Each run here writes SIZE bytes as fast as the container can and exits 7;
// kubectl must print every byte (same sha256) and exit 7, over SPDY (kubectl 1.28) and WebSocket
// (kubectl 1.33), at 16 MiB/s and at 256 KiB/s.
//
// THROTTLE_TAIL_RUNS sets the runs per limit and client: 1 by default for make e2e
// (TestThrottledTail), 20 for the reliability suite (TestReliabilityThrottledTail).

// TestThrottledTail: the throttled tail, once per limit and client.
func TestThrottledTail(t *testing.T) {
	runCheck(t, "throttled tail", false, func(p *probe) { checkThrottledTail(p, tailRuns(t, 1)) })
}

// TestReliabilityThrottledTail: the throttled tail, 20 times per limit and client.
func TestReliabilityThrottledTail(t *testing.T) {
	runCheck(t, "throttled tail", false, func(p *probe) { checkThrottledTail(p, tailRuns(t, 20)) })
}

func tailRuns(t *testing.T, def int) int {
	v := os.Getenv("THROTTLE_TAIL_RUNS")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("THROTTLE_TAIL_RUNS=%q: want a positive number", v)
	}
	return n
}

var tailCases = []struct {
	name        string
	bytesPerSec int
	size        int
	// parallel: the runs go at once (each session has its own limit); at 16 MiB/s they would be
	// limited by the machine rather than by exec-proxy, so those go one by one.
	parallel bool
}{
	{"80MiB at 16MiB/s", 16 << 20, 80 << 20, false},
	{"16MiB at 256KiB/s", 256 << 10, 16 << 20, true},
}

// tailOutput is what `seq 1 N | head -c size` prints: lines that never repeat, so a lost, doubled
// or misplaced block changes the sum.
func tailOutput(size int) []byte {
	out := make([]byte, 0, size+16)
	for i := int64(1); len(out) < size; i++ {
		out = strconv.AppendInt(out, i, 10)
		out = append(out, '\n')
	}
	return out[:size]
}

func checkThrottledTail(p *probe, runs int) {
	t := p.t
	tailClients := []client{clients[0], clients[1]} // kubectl 1.28 (SPDY), kubectl 1.33 (WebSocket)
	for _, tc := range tailCases {
		t.Run(tc.name, func(t *testing.T) {
			restartExecProxy(t, fmt.Sprintf("--max-bytes-per-sec-per-session=%d", tc.bytesPerSec))
			want := sha256.Sum256(tailOutput(tc.size))
			// The output is made before it is sent, so that it goes as fast as the container can
			// write it, far ahead of the limit.
			script := fmt.Sprintf(`f=/tmp/tail.$$; seq 1 %d | head -c %d > $f; cat $f; rm -f $f; exit 7`, tc.size/2, tc.size)
			for _, c := range tailClients {
				t.Run(c.name, func(t *testing.T) {
					var wg sync.WaitGroup
					for i := 0; i < runs; i++ {
						run := func() {
							defer wg.Done()
							res := c.kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "sh", "-c", script)
							p.count(1, 0, 1, int64(len(res.stdout)))
							if got := sha256.Sum256([]byte(res.stdout)); res.code != 7 || got != want {
								p.finding("%s, %s, run %d: exit %d, %d bytes of %d (sha256 %x, want %x); stderr: %s",
									tc.name, c.name, i+1, res.code, len(res.stdout), tc.size, got[:6], want[:6], res.stderr)
							}
						}
						wg.Add(1)
						if tc.parallel {
							go run()
						} else {
							run()
						}
					}
					wg.Wait()
				})
			}
			p.figure("%s: %d runs per client", tc.name, runs)
		})
	}
}
