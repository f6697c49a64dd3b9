// Package proc reads the CPU time and memory of processes, and of the whole machine, from /proc.
package proc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// userHZ is the unit of /proc's CPU times: 100 on Linux.
const userHZ = 100

// Times are a process's CPU seconds: its own, and those of its children it has waited for.
type Times struct {
	Own, Children float64
}

// ParseStat reads the CPU times from a /proc/PID/stat.
func ParseStat(stat []byte) (Times, error) {
	s := string(stat)
	// The command name may hold spaces and parentheses: fields count from after its last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Times{}, fmt.Errorf("no command name in %q", s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return Times{}, fmt.Errorf("%d fields after the command name in %q", len(f), s)
	}
	var v [4]float64 // utime stime cutime cstime: fields 14-17 of proc(5)
	for j := range v {
		n, err := strconv.ParseFloat(f[11+j], 64)
		if err != nil {
			return Times{}, fmt.Errorf("stat field %d: %w", 14+j, err)
		}
		v[j] = n
	}
	return Times{Own: (v[0] + v[1]) / userHZ, Children: (v[2] + v[3]) / userHZ}, nil
}

// PidOf is the pid in the cluster's pid file cluster/run/name.pid.
func PidOf(cluster, name string) (int, error) {
	b, err := os.ReadFile(filepath.Join(cluster, "run", name+".pid"))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("pid file %s: %w", name, err)
	}
	return pid, nil
}

// File reads /proc/<pid>/file of the process whose pid file is cluster/run/name.pid.
func File(cluster, name, file string) ([]byte, error) {
	pid, err := PidOf(cluster, name)
	if err != nil {
		return nil, err
	}
	return os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + file)
}

// CPUSeconds is the user+system CPU time of the process whose pid file is cluster/run/name.pid.
func CPUSeconds(cluster, name string) (float64, error) {
	stat, err := File(cluster, name, "stat")
	if err != nil {
		return 0, err
	}
	t, err := ParseStat(stat)
	return t.Own, err
}

// RSSKiB is the resident set of the process whose pid file is cluster/run/name.pid.
func RSSKiB(cluster, name string) (int64, error) {
	status, err := File(cluster, name, "status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			return strconv.ParseInt(strings.Fields(line)[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS for %s", name)
}

// ParseMachine reads the machine's busy and total CPU seconds so far from /proc/stat's first line:
// busy is all but idle and iowait.
func ParseMachine(stat []byte) (busy, total float64) {
	// cpu user nice system idle iowait irq softirq steal ...
	f := strings.Fields(strings.SplitN(string(stat), "\n", 2)[0])
	for i := 1; i < len(f) && i <= 8; i++ {
		v, _ := strconv.ParseFloat(f[i], 64)
		total += v / userHZ
		if i != 4 && i != 5 {
			busy += v / userHZ
		}
	}
	return busy, total
}

// Machine is the machine's busy and total CPU seconds so far, from /proc/stat; zero if unread.
func Machine() (busy, total float64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	return ParseMachine(data)
}

// PIDCPUSeconds is the user+system CPU time of process pid ("self": this one).
func PIDCPUSeconds(pid string) (float64, error) {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	t, err := ParseStat(stat)
	return t.Own, err
}

// OpenFiles is the soft limit on open files of the process whose pid file is cluster/run/name.pid,
// and how many it holds open.
func OpenFiles(cluster, name string) (limit int64, open int, err error) {
	limits, err := File(cluster, name, "limits")
	if err != nil {
		return 0, 0, err
	}
	if limit, err = parseOpenFilesLimit(string(limits)); err != nil {
		return 0, 0, err
	}
	pid, err := PidOf(cluster, name)
	if err != nil {
		return limit, 0, err
	}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	return limit, len(fds), err
}

// parseOpenFilesLimit reads the soft limit of "Max open files" from /proc/<pid>/limits (-1:
// unlimited).
func parseOpenFilesLimit(limits string) (int64, error) {
	for _, line := range strings.Split(limits, "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 && f[0] == "unlimited" {
				return -1, nil
			}
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no Max open files in /proc/<pid>/limits")
}
