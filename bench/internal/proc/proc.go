// Package proc reads what the kernel counts of the cluster's processes (found by their pid files,
// cluster/run/<name>.pid) and of the whole machine.
package proc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CPUSeconds is the user+system CPU time of the process whose pid file is cluster/run/name.pid.
func CPUSeconds(cluster, name string) (float64, error) {
	stat, err := File(cluster, name, "stat")
	if err != nil {
		return 0, err
	}
	return parseCPUSeconds(string(stat))
}

// PIDCPUSeconds is the user+system CPU time of process pid ("self": this one).
func PIDCPUSeconds(pid string) (float64, error) {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	return parseCPUSeconds(string(stat))
}

func parseCPUSeconds(stat string) (float64, error) {
	// The command name may hold spaces: fields count from after its closing parenthesis.
	fields := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/<pid>/stat: %d fields after the command", len(fields))
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100, nil // USER_HZ is 100 on Linux
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
	pid, err := pidOf(cluster, name)
	if err != nil {
		return limit, 0, err
	}
	fds, err := os.ReadDir("/proc/" + pid + "/fd")
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

// File reads /proc/<pid>/file of the process whose pid file is cluster/run/name.pid.
func File(cluster, name, file string) ([]byte, error) {
	pid, err := pidOf(cluster, name)
	if err != nil {
		return nil, err
	}
	return os.ReadFile("/proc/" + pid + "/" + file)
}

func pidOf(cluster, name string) (string, error) {
	pid, err := os.ReadFile(filepath.Join(cluster, "run", name+".pid"))
	return strings.TrimSpace(string(pid)), err
}

// MachineCPU is the machine's busy and total CPU seconds so far, from /proc/stat.
func MachineCPU() (busy, total float64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	return parseMachineCPU(string(data))
}

func parseMachineCPU(stat string) (busy, total float64) {
	// cpu user nice system idle iowait irq softirq steal ...
	f := strings.Fields(strings.SplitN(stat, "\n", 2)[0])
	for i := 1; i < len(f) && i <= 8; i++ {
		v, _ := strconv.ParseFloat(f[i], 64)
		total += v / 100 // USER_HZ
		if i != 4 && i != 5 {
			busy += v / 100
		}
	}
	return busy, total
}
