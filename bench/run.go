package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"

	"github.com/exec-proxy/exec-proxy/bench/apf"
	"github.com/exec-proxy/exec-proxy/bench/concurrent"
	"github.com/exec-proxy/exec-proxy/bench/idle"
	"github.com/exec-proxy/exec-proxy/bench/idleexec"
	"github.com/exec-proxy/exec-proxy/bench/internal/execpath"
	"github.com/exec-proxy/exec-proxy/bench/internal/proc"
	"github.com/exec-proxy/exec-proxy/bench/keystroke"
	"github.com/exec-proxy/exec-proxy/bench/setup"
	"github.com/exec-proxy/exec-proxy/bench/throughput"
	"github.com/exec-proxy/exec-proxy/bench/tlsrelay"
)

// Results are every figure of one run.
type Results struct {
	Machine    string             `json:"machine"`
	Date       string             `json:"date"`
	Options    OptionsJSON        `json:"options"`
	Throughput *throughput.Result `json:"throughput,omitempty"`
	Idle       *idle.Result       `json:"idle,omitempty"`
	Throttle   Throttle           `json:"throttle"`
	Admission  []AdmissionSetup   `json:"admission,omitempty"`
	APF        *apf.Result        `json:"apf,omitempty"`
	IdleExec   *idleexec.Result   `json:"idleExec,omitempty"`
	Keystroke  *keystroke.Result  `json:"keystroke,omitempty"`
	Concurrent *concurrent.Result `json:"concurrent,omitempty"`
	// PortForwardSetup is the setup part's; the throughput part keeps exec's setup latency.
	PortForwardSetup *setup.Result `json:"portForwardSetup,omitempty"`
}

type OptionsJSON struct {
	DownloadBytes, UploadBytes int64
	Runs, Sessions, Idle       int
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
	admin, err := execpath.LoadConfig(o.cluster, "admin-direct")
	if err != nil {
		return nil, err
	}
	routeCfg, err := execpath.LoadConfig(o.cluster, "admin")
	if err != nil {
		return nil, err
	}
	route := execpath.API("exec-proxy", routeCfg)
	defer restartExecProxy(context.Background(), o.cluster, route, "", nil) // as the cluster runs it
	if o.parts["throughput"] {
		if res.Throughput, err = throughput.Run(ctx, throughputOptions(o, route)); err != nil {
			return nil, err
		}
	} else if o.parts["profiles"] {
		if err := restartExecProxy(ctx, o.cluster, route, unlimited, nil); err != nil {
			return nil, err
		}
	}
	if o.parts["throughput"] || o.parts["profiles"] {
		cpuProfiles(ctx, o, route, admin) // exec-proxy as throughput.Run leaves it: audit on, no recording
	}

	if o.parts["admission"] {
		if err := restartExecProxy(ctx, o.cluster, route, unlimited+" --session-audit-log-path= --recording-dir=", nil); err != nil {
			return nil, err
		}
		if res.Admission, err = admissionRuns(ctx, o, route); err != nil {
			return nil, err
		}
	}
	if o.parts["apf"] {
		if err := restartExecProxy(ctx, o.cluster, route, "", nil); err != nil {
			return nil, err
		}
		if res.APF, err = apf.Run(ctx, apfOptions(o)); err != nil {
			return nil, err
		}
	}
	if o.parts["throttle"] {
		if res.Throttle, err = throttle(ctx, o, route); err != nil {
			return nil, err
		}
	}
	if o.parts["idleexec"] {
		// As the cluster runs it (audit on), with /debug/pprof for the forced collections.
		if err := restartExecProxy(ctx, o.cluster, route, unlimited+" --profiling", nil); err != nil {
			return nil, err
		}
		ie := o.idleExec
		ie.Cluster, ie.KubectlDir, ie.Logf = o.cluster, filepath.Dir(o.apf.Kubectl), logf
		if res.IdleExec, err = idleexec.Run(ctx, ie); err != nil {
			return nil, err
		}
	}
	if o.parts["keystroke"] {
		// As the cluster runs it (audit and recording on), with no limit on session starts.
		if err := restartExecProxy(ctx, o.cluster, route, unlimited, nil); err != nil {
			return nil, err
		}
		ks := o.keystroke
		ks.Cluster, ks.KubectlDir, ks.Logf = o.cluster, filepath.Dir(o.apf.Kubectl), logf
		if res.Keystroke, err = keystroke.Run(ctx, ks); err != nil {
			return nil, err
		}
	}
	if o.parts["concurrent"] {
		c := o.concurrent
		c.Cluster, c.KubectlDir, c.Logf = o.cluster, filepath.Dir(o.apf.Kubectl), logf
		c.Restart = func(ctx context.Context) error {
			return restartExecProxy(ctx, o.cluster, route, unlimited+" --session-audit-log-path= --recording-dir=", nil)
		}
		if res.Concurrent, err = concurrent.Run(ctx, c); err != nil {
			return nil, err
		}
	}
	if o.parts["setup"] {
		// Audit log on, no limit on session starts; the webhook on and off by turns.
		st := o.setup
		st.Cluster, st.ExecProxyFlags, st.Logf = o.cluster, unlimited, logf
		st.RestartExecProxy = func(ctx context.Context, flags string) error {
			return restartExecProxy(ctx, o.cluster, route, flags, nil)
		}
		if res.PortForwardSetup, err = setup.Run(ctx, st); err != nil {
			return nil, err
		}
	}
	if !o.parts["idle"] {
		return res, nil
	}
	idl := o.idleOpts
	idl.Cluster, idl.Profiles, idl.Sessions, idl.Runs, idl.Logf = o.cluster, o.profiles, o.idle, o.idleRuns, logf
	idl.PortForward, idl.Port = execpath.PortForwardURL(execProxyURL+execpath.KubeRoute), demoPort
	idl.Config = adminStraight(o.cluster)
	idl.Get = func(p string, timeout time.Duration) ([]byte, error) { return straightGet(idl.Config, p, timeout) }
	idl.Restart = func(ctx context.Context) error {
		return restartExecProxy(ctx, o.cluster, route, unlimited+" --session-audit-log-path= --recording-dir= --profiling", nil)
	}
	kt := execpath.KubeletTLS(o.cluster)
	relay, err := tlsrelay.Start(relayCommand(), execpath.KubeletHost, kt.CAFile, kt.CertFile, kt.KeyFile)
	if err != nil {
		return nil, err
	}
	defer relay.Stop()
	direct, err := execpath.LoadConfig(o.cluster, "admin-direct")
	if err != nil {
		return nil, err
	}
	idl.Baselines = []idle.Baseline{
		{Name: throughput.Relay, PortForward: execpath.KubeletPortForwardURL("https://" + relay.Addr),
			Config:     &rest.Config{Host: "https://" + relay.Addr, QPS: -1, TLSClientConfig: rest.TLSClientConfig{CAData: relay.CA}},
			CPUSeconds: func() (float64, error) { return proc.PIDCPUSeconds(strconv.Itoa(relay.Pid)) }},
		{Name: throughput.APIServer, PortForward: execpath.PortForwardURL(direct.Host),
			Config:     direct,
			CPUSeconds: func() (float64, error) { return proc.CPUSeconds(o.cluster, "kube-apiserver") }},
	}
	res.Idle, err = idle.Measure(ctx, idl)
	return res, err
}

// relayCommand starts the bench binary as the bare TLS relay.
func relayCommand() []string {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	return []string{self, tlsrelay.Arg}
}

// throughputOptions are o's for the throughput part, with the bench's cluster access and log.
func throughputOptions(o options, route execpath.Path) throughput.Options {
	return throughput.Options{Cluster: o.cluster, Download: o.download, Upload: o.upload, Rounds: o.runs, Sessions: o.sessions,
		ExecProxyFlags: unlimited, RelayCommand: relayCommand(), Logf: logf,
		Clean: func() { removeRecordings(o.cluster) },
		RestartExecProxy: func(ctx context.Context, flags string, env []string) error {
			return restartExecProxy(ctx, o.cluster, route, flags, env)
		}}
}

// apfOptions are o's for the apf part, with the bench's cluster access and log.
func apfOptions(o options) apf.Options {
	a := o.apf
	a.Cluster, a.Logf = o.cluster, logf
	a.Config = func(name string) (*rest.Config, error) { return execpath.LoadConfig(o.cluster, name) }
	a.ExecProxyMetrics = func() ([]byte, error) { return straightGet(adminStraight(o.cluster), "/metrics", 10*time.Second) }
	return a
}

// cpuProfiles records where exec-proxy and kube-apiserver spend their CPU while one download,
// then one upload, runs through the route, over each protocol, for go tool pprof.
func cpuProfiles(ctx context.Context, o options, route execpath.Path, admin *rest.Config) {
	if o.profiles == "" {
		return
	}
	targets := map[string]*rest.Config{"exec-proxy": adminStraight(o.cluster), "kube-apiserver": admin}
	transfers := []struct {
		name  string
		bytes int64
		run   func(context.Context, execpath.Path, string, int64) (float64, error)
	}{{"download", o.download, execpath.Download}, {"upload", 4 * o.upload, execpath.Upload}}
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

// throttle measures a throttled session's rate against its limit, and a burst of session starts
// against the start bucket.
func throttle(ctx context.Context, o options, route execpath.Path) (Throttle, error) {
	t := Throttle{ConfiguredBytesPerSec: o.throttleBytesPerSecond, Burst: o.burst, Starts: 4 * o.burst}
	logf("throttle: one session at --max-bytes-per-sec-per-session=%d", o.throttleBytesPerSecond)
	if err := restartExecProxy(ctx, o.cluster, route, fmt.Sprintf("%s --session-audit-log-path= --recording-dir= --max-bytes-per-sec-per-session=%d", unlimited, o.throttleBytesPerSecond), nil); err != nil {
		return t, err
	}
	n := 5 * o.throttleBytesPerSecond // long enough for the burst allowance not to count
	rate, err := execpath.Download(ctx, route, "spdy", n)
	if err != nil {
		return t, err
	}
	t.MeasuredBytesPerSec = rate * (1 << 20)
	t.Ratio = t.MeasuredBytesPerSec / float64(o.throttleBytesPerSecond)
	logf("throttle: %d session starts at once, --session-start-burst=%d", t.Starts, o.burst)
	if err := restartExecProxy(ctx, o.cluster, route, fmt.Sprintf("--session-audit-log-path= --recording-dir= --session-start-qps=0.001 --session-start-burst=%d --max-sessions-per-user=0", o.burst), nil); err != nil {
		return t, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < t.Starts; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := route.Run(ctx, "spdy", []string{"true"}, nil, io.Discard)
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

// restartExecProxy runs the cluster's exec-proxy with extra flags and environment variables (K=V,
// which hack/cluster/exec-proxy.sh passes on to it) and waits until an exec goes through the route.
// The readiness probe here spends one session start.
func restartExecProxy(ctx context.Context, cluster string, route execpath.Path, flags string, env []string) error {
	cmd := exec.CommandContext(ctx, "bash", "-c", "hack/cluster/exec-proxy.sh down && hack/cluster/exec-proxy.sh up")
	cmd.Dir = filepath.Join(cluster, "..")
	cmd.Env = append(append(os.Environ(), "EXEC_PROXY_EXTRA_ARGS="+flags), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("restarting exec-proxy with %q: %w\n%s", flags, err, out)
	}
	var err error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if err = route.Run(ctx, "spdy", []string{"true"}, nil, io.Discard); err == nil {
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
