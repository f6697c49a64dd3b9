package throughput

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/exec-proxy/exec-proxy/bench/internal/proc"
)

// fakeProc writes a /proc and a cluster's run directory: stat lines with utime, stime, cutime,
// cstime in ticks.
type fakeProc struct{ proc, cluster string }

func newFakeProc(t *testing.T) fakeProc {
	d := t.TempDir()
	f := fakeProc{filepath.Join(d, "proc"), filepath.Join(d, "cluster")}
	for _, dir := range []string{f.proc, filepath.Join(f.cluster, "run")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f fakeProc) process(t *testing.T, pid int, pidFile string, cmdline []string, utime, stime, cutime, cstime int) {
	t.Helper()
	dir := filepath.Join(f.proc, fmt.Sprint(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stat := fmt.Sprintf("%d (a (b) c) S 1 %d %d 0 -1 4194560 100 0 0 0 %d %d %d %d 20 0 8 0 100 1000 100\n", pid, pid, pid, utime, stime, cutime, cstime)
	var cl string
	for _, a := range cmdline {
		cl += a + "\x00"
	}
	for name, b := range map[string]string{"stat": stat, "cmdline": cl} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if pidFile != "" {
		if err := os.WriteFile(filepath.Join(f.cluster, "run", pidFile+".pid"), []byte(fmt.Sprintln(pid)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (f fakeProc) machine(t *testing.T, busy, idle int) {
	t.Helper()
	line := fmt.Sprintf("cpu  %d 0 0 %d 0 0 0 0 0 0\ncpu0 1 2 3 4\n", busy, idle)
	if err := os.WriteFile(filepath.Join(f.proc, "stat"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Every busy second of the machine is told to a process or to Other, per GiB.
func TestSampleAndAttribute(t *testing.T) {
	f := newFakeProc(t)
	s := Sampler{Proc: f.proc, Cluster: f.cluster, Pids: map[string]int{"client": 30, "tls relay": 31}}
	shim := func(pid int, address string, ticks, reaped int) {
		f.process(t, pid, "", []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "abc", "-address", address}, ticks, 0, reaped, 0)
	}
	state := func(ep, epPid, kubelet, client, shimTicks, reaped, busy, idle int) {
		f.process(t, epPid, "exec-proxy", []string{"exec-proxy"}, ep, ep, 0, 0)
		f.process(t, 11, "kubelet-node1", []string{"kubelet"}, kubelet, 0, 0, 0)
		f.process(t, 30, "", []string{"bench"}, client, 0, 999, 0) // children not counted: the bench's are scripts
		f.process(t, 31, "", []string{"bench", "-tls-relay"}, 0, 0, 0, 0)
		shim(40, f.cluster+"/node1/containerd.sock", shimTicks, reaped)
		shim(41, "/elsewhere/containerd.sock", 1000, 1000)                         // another cluster's: not counted
		f.process(t, 42, "", []string{"containerd-shim-runc-v2-x"}, 1000, 0, 0, 0) // not a shim
		f.machine(t, busy, idle)
	}
	state(100, 10, 0, 100, 10, 0, 1000, 1000)
	before := s.Sample()
	// Over 2 GiB: exec-proxy 2+2 s, kubelet 3 s, shims 1 s, the container 6 s, the client 1 s,
	// the machine 20 s busy of 40.
	state(300, 10, 300, 200, 110, 600, 3000, 3000)
	after := s.Sample()
	got, busy := Attribute(before, after, 2)
	want := map[string]float64{"exec-proxy": 2, "kubelet-node1": 1.5, "client": 0.5, "tls relay": 0, Shims: 0.5, Container: 3, Machine: 10, Other: 10 - 7.5}
	for k, v := range want {
		if math.Abs(got[k]-v) > 1e-9 {
			t.Errorf("%s: %v s/GiB, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("attributed %v, want only %v", got, want)
	}
	if busy != 0.5 {
		t.Errorf("busy share %v, want 0.5", busy)
	}

	// exec-proxy restarted between the snapshots: its pid changed, so its seconds are unknown and
	// fall to Other.
	state(300, 12, 300, 200, 110, 600, 5000, 3000)
	got, _ = Attribute(after, s.Sample(), 2)
	if _, ok := got["exec-proxy"]; ok {
		t.Errorf("a restarted exec-proxy attributed %v", got["exec-proxy"])
	}
	if got[Other] != 10 {
		t.Errorf("other %v s/GiB, want 10", got[Other])
	}
}

func TestParseStat(t *testing.T) {
	for _, c := range []struct {
		stat string
		want proc.Times
		bad  bool
	}{
		{"7 (sh) S 1 7 7 0 -1 0 0 0 0 0 150 50 20 10 20 0", proc.Times{Own: 2, Children: 0.3}, false},
		{"7 (a) b) (c) R 1 7 7 0 -1 0 0 0 0 0 1 2 3 4 20 0", proc.Times{Own: 0.03, Children: 0.07}, false},
		{"7 (sh) S 1 7", proc.Times{}, true},
		{"no name", proc.Times{}, true},
	} {
		got, err := proc.ParseStat([]byte(c.stat))
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("ParseStat(%q) = %+v, %v; want %+v (error %v)", c.stat, got, err, c.want, c.bad)
		}
	}
}
