package throughput

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/exec-proxy/exec-proxy/bench/internal/proc"
)

// Names of the CPU figures beside the cluster's processes (named by their pid files).
const (
	Shims     = "containerd shims"
	Container = "in the container" // what the shims reaped: the exec'd command and runc
	Machine   = "machine"
	Other     = "other" // machine less every process named
)

// A Sampler reads the CPU seconds of every process a transfer involves, so that each CPU second
// of the machine is told to one of them or to Other:
//   - every process with a pid file in the cluster's run directory (kube-apiserver, exec-proxy,
//     etcd, each node's kubelet and containerd, ...), by the file's name;
//   - Pids: the bench's own process (the client, in process) and the TLS relay;
//   - every containerd-shim-runc-v2 of the cluster's nodes (its -address is below the cluster's
//     directory), summed: the demo pod's shim is among them and the others idle. Finding the demo
//     pod's own would take its sandbox id from the CRI, for shims that spend next to nothing;
//   - Container: the shims' children's time, which Linux adds to a parent when it reaps a child:
//     the shim is the subreaper of what runc starts, so an exec's command (sh, yes, dd, wc) and
//     runc itself are counted there once they exit, which they have when the exec returns.
type Sampler struct {
	Proc    string         // /proc
	Cluster string         // its run/*.pid, and the prefix of its shims' -address
	Pids    map[string]int // further processes by name
}

// A Snapshot is CPU seconds so far.
type Snapshot struct {
	Procs map[string]pidTimes // by name
	Shims map[int]proc.Times  // by pid
	// The machine's busy and total CPU seconds (all cores).
	Busy, Total float64
}

type pidTimes struct {
	Pid int
	proc.Times
}

// Sample reads every process's CPU seconds, and the machine's.
func (s Sampler) Sample() Snapshot {
	snap := Snapshot{Procs: map[string]pidTimes{}, Shims: map[int]proc.Times{}}
	pids := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(s.Cluster, "run", "*.pid"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				pids[strings.TrimSuffix(filepath.Base(f), ".pid")] = pid
			}
		}
	}
	for name, pid := range s.Pids {
		pids[name] = pid
	}
	for name, pid := range pids {
		if t, err := s.times(pid); err == nil {
			snap.Procs[name] = pidTimes{pid, t}
		}
	}
	cluster, _ := filepath.Abs(s.Cluster)
	entries, _ := os.ReadDir(s.Proc)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !s.isShim(pid, cluster) {
			continue
		}
		if t, err := s.times(pid); err == nil {
			snap.Shims[pid] = t
		}
	}
	if stat, err := os.ReadFile(filepath.Join(s.Proc, "stat")); err == nil {
		snap.Busy, snap.Total = proc.ParseMachine(stat)
	}
	return snap
}

func (s Sampler) times(pid int) (proc.Times, error) {
	stat, err := os.ReadFile(filepath.Join(s.Proc, strconv.Itoa(pid), "stat"))
	if err != nil {
		return proc.Times{}, err
	}
	return proc.ParseStat(stat)
}

// isShim: pid is a containerd-shim-runc-v2 whose -address is below the cluster's directory.
func (s Sampler) isShim(pid int, cluster string) bool {
	b, err := os.ReadFile(filepath.Join(s.Proc, strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if filepath.Base(args[0]) != "containerd-shim-runc-v2" {
		return false
	}
	for i := 1; i+1 < len(args); i++ {
		if args[i] == "-address" || args[i] == "--address" {
			return strings.HasPrefix(args[i+1], cluster+"/")
		}
	}
	return false
}

// Attribute is the CPU seconds per GiB between two snapshots over gib GiB: of each named process
// that ran throughout (the same pid in both), Shims and Container over the shims in both, Machine,
// and Other, the machine's busy seconds that no process named spent (other tenants, the kernel's
// work not charged to a process, processes that started or ended between the snapshots). The
// second result is the machine's busy share.
func Attribute(before, after Snapshot, gib float64) (map[string]float64, float64) {
	out := map[string]float64{}
	var named float64
	for name, a := range after.Procs {
		if b, ok := before.Procs[name]; ok && b.Pid == a.Pid {
			d := a.Own - b.Own
			out[name] = d / gib
			named += d
		}
	}
	var shims, children float64
	for pid, a := range after.Shims {
		if b, ok := before.Shims[pid]; ok {
			shims += a.Own - b.Own
			children += a.Children - b.Children
		}
	}
	out[Shims], out[Container] = shims/gib, children/gib
	named += shims + children
	busy := after.Busy - before.Busy
	out[Machine], out[Other] = busy/gib, (busy-named)/gib
	share := 0.0
	if total := after.Total - before.Total; total > 0 {
		share = busy / total
	}
	return out, share
}
