package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"

	"github.com/exec-proxy/exec-proxy/bench/apf"
	"github.com/exec-proxy/exec-proxy/bench/concurrent"
	"github.com/exec-proxy/exec-proxy/bench/idle"
	"github.com/exec-proxy/exec-proxy/bench/idleexec"
	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

// Results are every figure of one run.
type Results struct {
	Machine    string             `json:"machine"`
	Date       string             `json:"date"`
	Options    OptionsJSON        `json:"options"`
	Throughput []Throughput       `json:"throughput"`
	Setup      []Setup            `json:"setup"`
	Idle       *idle.Result       `json:"idle,omitempty"`
	Throttle   Throttle           `json:"throttle"`
	Admission  []AdmissionSetup   `json:"admission,omitempty"`
	APF        *apf.Result        `json:"apf,omitempty"`
	IdleExec   *idleexec.Result   `json:"idleExec,omitempty"`
	Concurrent *concurrent.Result `json:"concurrent,omitempty"`
	// Failed lists the transfers that failed and were run once more.
	Failed []string `json:"failedTransfers,omitempty"`
}

type OptionsJSON struct {
	DownloadBytes, UploadBytes int64
	Runs, Sessions, Idle       int
}

// Throughput is one path's rate in one direction over one protocol, in MiB/s.
type Throughput struct {
	Path      string      `json:"path"`
	Protocol  string      `json:"protocol"`
	Direction string      `json:"direction"` // download (stdout) or upload (stdin)
	MiBps     stats.Stats `json:"mibPerSec"`
	// VsAPIServer is this path's rate over kube-apiserver's in the same round, over the rounds.
	VsAPIServer *stats.Stats `json:"vsKubeAPIServer,omitempty"`
	// CPUPerGiB is the median by process, and for the whole machine ("machine").
	CPUPerGiB map[string]float64 `json:"cpuSecondsPerGiB,omitempty"`
	// MachineBusy is the median share of the machine's CPU time that was busy during a run.
	MachineBusy float64 `json:"machineBusy,omitempty"`
}

// Setup is one path's round trip of exec -- true, in ms.
type Setup struct {
	Path     string  `json:"path"`
	Protocol string  `json:"protocol"`
	P50      float64 `json:"p50ms"`
	P99      float64 `json:"p99ms"`
	Count    int     `json:"sessions"`
}

// Throttle is how closely the limits hold.
type Throttle struct {
	ConfiguredBytesPerSec int64   `json:"configuredBytesPerSec"`
	MeasuredBytesPerSec   float64 `json:"measuredBytesPerSec"`
	Ratio                 float64 `json:"ratio"`
	Burst                 int     `json:"burst"`
	Starts                int     `json:"starts"`
	Accepted              int     `json:"accepted"`
	Refused429            int     `json:"refused429"`
	OtherErrors           int     `json:"otherErrors"`
}

const unlimited = "--session-start-qps=0 --max-sessions=0 --max-sessions-per-user=0 --max-sessions-per-node=0"

func run(ctx context.Context, o options) (*Results, error) {
	res := &Results{Machine: machine(), Date: time.Now().UTC().Format(time.RFC3339),
		Options: OptionsJSON{o.download, o.upload, o.runs, o.sessions, o.idle}}
	admin, err := loadConfig(o.cluster, "admin-direct")
	if err != nil {
		return nil, err
	}
	route, err := loadConfig(o.cluster, "admin")
	if err != nil {
		return nil, err
	}
	paths := []path{kubeletPath(o.cluster), apiPath("kube-apiserver", admin, "kube-apiserver"),
		apiPath("exec-proxy", route, "exec-proxy", "kube-apiserver")}
	defer restartExecProxy(context.Background(), o.cluster, paths[2], "") // as the cluster runs it
	steps := []struct {
		what  string
		flags string
		paths []path
	}{
		{"no audit, no recording", unlimited + " --session-audit-log-path= --recording-dir=", paths},
		// kube-apiserver's path again, so that this path too is measured beside it.
		{"session audit and recording of every session", unlimited + " --record-non-tty --record-stdin",
			[]path{paths[1], apiPath("exec-proxy + audit + recording", route, "exec-proxy", "kube-apiserver")}},
	}
	for i, step := range steps {
		if !o.parts["throughput"] {
			break
		}
		logf("exec-proxy with %s", step.what)
		if err := restartExecProxy(ctx, o.cluster, paths[2], step.flags); err != nil {
			return nil, err
		}
		if err := measurePaths(ctx, o, step.paths, res); err != nil {
			return nil, err
		}
		if i == 0 {
			cpuProfiles(ctx, o, paths[2], admin)
		}
	}
	if o.parts["profiles"] && !o.parts["throughput"] {
		if err := restartExecProxy(ctx, o.cluster, paths[2], steps[0].flags); err != nil {
			return nil, err
		}
		cpuProfiles(ctx, o, paths[2], admin)
	}

	if o.parts["admission"] {
		if err := restartExecProxy(ctx, o.cluster, paths[2], steps[0].flags); err != nil {
			return nil, err
		}
		if res.Admission, err = admissionRuns(ctx, o, paths[2]); err != nil {
			return nil, err
		}
	}
	if o.parts["apf"] {
		if err := restartExecProxy(ctx, o.cluster, paths[2], ""); err != nil {
			return nil, err
		}
		if res.APF, err = apf.Run(ctx, apfOptions(o)); err != nil {
			return nil, err
		}
	}
	if o.parts["throttle"] {
		if res.Throttle, err = throttle(ctx, o, paths[2]); err != nil {
			return nil, err
		}
	}
	if o.parts["idleexec"] {
		// As the cluster runs it (audit on), with /debug/pprof for the forced collections.
		if err := restartExecProxy(ctx, o.cluster, paths[2], unlimited+" --profiling"); err != nil {
			return nil, err
		}
		ie := o.idleExec
		ie.Cluster, ie.KubectlDir, ie.Logf = o.cluster, filepath.Dir(o.apf.Kubectl), logf
		if res.IdleExec, err = idleexec.Run(ctx, ie); err != nil {
			return nil, err
		}
	}
	if o.parts["concurrent"] {
		c := o.concurrent
		c.Cluster, c.KubectlDir, c.Logf = o.cluster, filepath.Dir(o.apf.Kubectl), logf
		c.Restart = func(ctx context.Context) error {
			return restartExecProxy(ctx, o.cluster, paths[2], unlimited+" --session-audit-log-path= --recording-dir=")
		}
		if res.Concurrent, err = concurrent.Run(ctx, c); err != nil {
			return nil, err
		}
	}
	if !o.parts["idle"] {
		return res, nil
	}
	idl := o.idleOpts
	idl.Cluster, idl.Profiles, idl.Sessions, idl.Runs, idl.Logf = o.cluster, o.profiles, o.idle, o.idleRuns, logf
	idl.PortForward, idl.Port = execProxyURL+kubeRoute+"/api/v1/namespaces/"+namespace+"/pods/"+pod+"/portforward", demoPort
	idl.Config = adminStraight(o.cluster)
	idl.Get = func(p string, timeout time.Duration) ([]byte, error) { return straightGet(idl.Config, p, timeout) }
	idl.Restart = func(ctx context.Context) error {
		return restartExecProxy(ctx, o.cluster, paths[2], unlimited+" --session-audit-log-path= --recording-dir= --profiling")
	}
	res.Idle, err = idle.Measure(ctx, idl)
	return res, err
}

// apfOptions are o's for the apf part, with the bench's cluster access and log.
func apfOptions(o options) apf.Options {
	a := o.apf
	a.Cluster, a.Logf = o.cluster, logf
	a.Config = func(name string) (*rest.Config, error) { return loadConfig(o.cluster, name) }
	a.ExecProxyMetrics = func() ([]byte, error) { return straightGet(adminStraight(o.cluster), "/metrics", 10*time.Second) }
	return a
}

// cpuProfiles records where exec-proxy and kube-apiserver spend their CPU while one download,
// then one upload, runs through the route, over each protocol, for go tool pprof.
func cpuProfiles(ctx context.Context, o options, route path, admin *rest.Config) {
	if o.profiles == "" {
		return
	}
	targets := map[string]*rest.Config{"exec-proxy": adminStraight(o.cluster), "kube-apiserver": admin}
	transfers := []struct {
		name  string
		bytes int64
		run   func(context.Context, path, string, int64) (float64, error)
	}{{"download", o.download, download}, {"upload", 4 * o.upload, upload}}
	for _, protocol := range []string{"spdy", "websocket"} {
		for _, tr := range transfers {
			logf("profiles: CPU of exec-proxy and kube-apiserver during a %s %s through the route", protocol, tr.name)
			var wg sync.WaitGroup
			for name, cfg := range targets {
				wg.Add(1)
				go func() {
					defer wg.Done()
					file := filepath.Join(o.profiles, protocol+"-"+tr.name+"-cpu-"+name+".pb.gz")
					if err := saveProfile(cfg, "profile?seconds=10", file, time.Minute); err != nil {
						logf("%v", err)
					}
				}()
			}
			if _, err := tr.run(ctx, route, protocol, tr.bytes); err != nil {
				logf("profiles: %s: %v", tr.name, err)
			}
			wg.Wait()
		}
	}
}

func medians(m map[string][]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		out[k] = stats.Summarize(v).Median
	}
	return out
}

// throttle measures a throttled session's rate against its limit, and a burst of session starts
// against the start bucket.
func throttle(ctx context.Context, o options, route path) (Throttle, error) {
	t := Throttle{ConfiguredBytesPerSec: o.throttleBytesPerSecond, Burst: o.burst, Starts: 4 * o.burst}
	logf("throttle: one session at --max-bytes-per-sec-per-session=%d", o.throttleBytesPerSecond)
	if err := restartExecProxy(ctx, o.cluster, route, fmt.Sprintf("%s --session-audit-log-path= --recording-dir= --max-bytes-per-sec-per-session=%d", unlimited, o.throttleBytesPerSecond)); err != nil {
		return t, err
	}
	n := 5 * o.throttleBytesPerSecond // long enough for the burst allowance not to count
	rate, err := download(ctx, route, "spdy", n)
	if err != nil {
		return t, err
	}
	t.MeasuredBytesPerSec = rate * (1 << 20)
	t.Ratio = t.MeasuredBytesPerSec / float64(o.throttleBytesPerSecond)
	logf("throttle: %d session starts at once, --session-start-burst=%d", t.Starts, o.burst)
	if err := restartExecProxy(ctx, o.cluster, route, fmt.Sprintf("--session-audit-log-path= --recording-dir= --session-start-qps=0.001 --session-start-burst=%d --max-sessions-per-user=0", o.burst)); err != nil {
		return t, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < t.Starts; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := route.run(ctx, "spdy", []string{"true"}, nil, io.Discard)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				t.Accepted++
			case apierrors.IsTooManyRequests(err) || strings.Contains(err.Error(), "429") || strings.Contains(err.Error(), "Too Many Requests"):
				t.Refused429++
			default:
				t.OtherErrors++
				logf("throttle: start failed: %v", err)
			}
		}()
	}
	wg.Wait()
	return t, nil
}

// restartExecProxy runs the cluster's exec-proxy with extra flags and waits until an exec goes
// through the route. The readiness probe here spends one session start.
func restartExecProxy(ctx context.Context, cluster string, route path, flags string) error {
	cmd := exec.CommandContext(ctx, "bash", "-c", "hack/cluster/exec-proxy.sh down && hack/cluster/exec-proxy.sh up")
	cmd.Dir = filepath.Join(cluster, "..")
	cmd.Env = append(os.Environ(), "EXEC_PROXY_EXTRA_ARGS="+flags)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("restarting exec-proxy with %q: %w\n%s", flags, err, out)
	}
	var err error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if err = route.run(ctx, "spdy", []string{"true"}, nil, io.Discard); err == nil {
			return nil
		}
	}
	return fmt.Errorf("the route does not serve exec after restarting exec-proxy: %w", err)
}

func removeRecordings(cluster string) {
	files, _ := filepath.Glob(filepath.Join(cluster, "recordings", "*.cast"))
	for _, f := range files {
		_ = os.Remove(f)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
