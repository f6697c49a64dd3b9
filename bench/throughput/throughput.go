// Package throughput measures bulk transfers through exec (a download from the container's stdout,
// an upload into its stdin) on every path side by side, in paired rounds, with the CPU of every
// process a transfer involves, and reports issue 28's ratios against their goals.
//
// The paths: the kubelet directly (client-go → kubelet, one TLS hop), a bare Go TLS relay in front
// of it (one more hop that only copies bytes: the physical limit of a proxy), kube-apiserver's own
// pods/exec, and the aggregated route to exec-proxy, as admin (not recorded) and as ns-user (every
// session recorded with its input, by a session policy rule), each at two exec-proxy
// configurations: GOGC unset (exec-proxy's own default) and GOGC=100 (Go's). The client is
// client-go in this process (SPDY as kubectl 1.28 speaks it, WebSocket v5 as kubectl 1.33 does).
//
// The machine's speed drifts while a benchmark runs (other tenants, the CPU's clock, the page
// cache) by more than the differences measured, so every round measures every path once, in an
// order that turns from round to round, and ratios are taken within a round. exec-proxy's two
// configurations are two restarts a round: its paths under one configuration are measured together.
package throughput

import (
	"context"
	"os"

	"k8s.io/client-go/rest"

	"github.com/exec-proxy/exec-proxy/bench/internal/execpath"
	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
	"github.com/exec-proxy/exec-proxy/bench/tlsrelay"
)

// Options say where the cluster is, how much to move and how to restart exec-proxy.
type Options struct {
	Cluster          string
	Download, Upload int64 // bytes per transfer
	Rounds           int   // paired rounds, after a discarded warm-up
	Sessions         int   // exec -- true timed per path and protocol for setup latency
	// ExecProxyFlags are exec-proxy's flags besides the session policy.
	ExecProxyFlags string
	// RestartExecProxy runs the cluster's exec-proxy with flags and environment variables (K=V)
	// and returns once the route serves exec.
	RestartExecProxy func(ctx context.Context, flags string, env []string) error
	// RelayCommand starts the TLS relay process: the bench binary and tlsrelay.Arg.
	RelayCommand []string
	Clean        func() // after each transfer: a recorded GiB need not stay on disk
	Logf         func(format string, args ...any)
}

// Config is one way exec-proxy runs in the rounds; its paths' names end in Suffix.
type Config struct {
	Name   string   `json:"name"`
	Env    []string `json:"env"`
	Suffix string   `json:"suffix"`
}

// configs: exec-proxy's default GC target (cmd/exec-proxy/app/gc.go: GOGC empty counts as unset)
// and Go's. hack/cluster/exec-proxy.sh starts exec-proxy with the environment it is given.
var configs = []Config{
	{Name: "GOGC unset (exec-proxy's default, 50)", Env: []string{"GOGC="}},
	{Name: "GOGC=100", Env: []string{"GOGC=100"}, Suffix: " GOGC=100"},
}

var (
	protocols  = []string{"spdy", "websocket"}
	directions = []string{"download", "upload"}
)

// Policy records ns-user's sessions, output and input, and no one else's: admin's sessions on
// the same exec-proxy are not recorded (--record-non-tty is off; the transfers have no TTY).
const Policy = `apiVersion: execproxy.dev/v1alpha1
kind: SessionPolicy
rules:
- name: bench-recorded
  match: {users: [ns-user]}
  recording: {record: all, stdin: true}
`

// kase is one path over one protocol; config is exec-proxy's, -1 on paths without it.
type kase struct {
	path     execpath.Path
	protocol string
	config   int
}

// group is cases measured one after the other in a round: one exec-proxy configuration's.
type group struct {
	config int
	cases  []kase
}

// hooks are what the rounds do on the cluster; tests replace them.
type hooks struct {
	transfer func(ctx context.Context, c kase, direction string, n int64) (float64, error)
	sample   func() Snapshot
	restart  func(ctx context.Context, config int) error
	setup    func(ctx context.Context, p execpath.Path, protocol string, k int) ([]float64, error)
}

// Run measures the part on the cluster. It leaves exec-proxy running with ExecProxyFlags alone.
func Run(ctx context.Context, o Options) (*Result, error) {
	api := map[string]execpath.Path{}
	for kubeconfig, name := range map[string]string{"admin-direct": APIServer, "admin": Route, "ns-user": Recorded} {
		cfg, err := execpath.LoadConfig(o.Cluster, kubeconfig)
		if err != nil {
			return nil, err
		}
		api[name] = execpath.API(name, cfg)
	}
	kt := execpath.KubeletTLS(o.Cluster)
	relay, err := tlsrelay.Start(o.RelayCommand, execpath.KubeletHost, kt.CAFile, kt.CertFile, kt.KeyFile)
	if err != nil {
		return nil, err
	}
	defer relay.Stop()
	policy, err := os.CreateTemp("", "bench-session-policy-*.yaml")
	if err != nil {
		return nil, err
	}
	defer os.Remove(policy.Name())
	if _, err := policy.WriteString(Policy); err != nil {
		return nil, err
	}
	policy.Close()
	defer func() { _ = o.RestartExecProxy(context.Background(), o.ExecProxyFlags, nil) }() // without the policy

	named := func(p execpath.Path, name string) execpath.Path { p.Name = name; return p }
	fixed := []execpath.Path{
		execpath.Kubelet(o.Cluster),
		execpath.KubeletAt(Relay, "https://"+relay.Addr, rest.TLSClientConfig{CAData: relay.CA}),
		api[APIServer],
	}
	var groups []group
	for _, p := range fixed {
		groups = append(groups, group{config: -1, cases: cases(-1, p)})
	}
	for i, c := range configs {
		groups = append(groups, group{config: i, cases: cases(i, named(api[Route], Route+c.Suffix), named(api[Recorded], Recorded+c.Suffix))})
	}
	setupPaths := append(fixed, api[Route], api[Recorded])
	sampler := Sampler{Proc: "/proc", Cluster: o.Cluster, Pids: map[string]int{"client": os.Getpid(), "tls relay": relay.Pid}}
	h := hooks{
		transfer: func(ctx context.Context, c kase, direction string, n int64) (float64, error) {
			defer o.Clean()
			if direction == "upload" {
				return execpath.Upload(ctx, c.path, c.protocol, n)
			}
			return execpath.Download(ctx, c.path, c.protocol, n)
		},
		sample: sampler.Sample,
		restart: func(ctx context.Context, config int) error {
			return o.RestartExecProxy(ctx, o.ExecProxyFlags+" --session-policy-file="+policy.Name(), configs[config].Env)
		},
		setup: execpath.SetupTimes,
	}
	return run(ctx, o, h, groups, setupPaths)
}

func cases(config int, paths ...execpath.Path) []kase {
	var out []kase
	for _, p := range paths {
		for _, protocol := range protocols {
			out = append(out, kase{path: p, protocol: protocol, config: config})
		}
	}
	return out
}

// run measures the warm-up round and o.Rounds rounds of groups, then setup latency on setupPaths
// at the first configuration.
func run(ctx context.Context, o Options, h hooks, groups []group, setupPaths []execpath.Path) (*Result, error) {
	res := &Result{Rounds: o.Rounds, DownloadBytes: o.Download, UploadBytes: o.Upload, Configs: configs, Policy: Policy}
	current := -1
	use := func(config int) error {
		if config < 0 || config == current {
			return nil
		}
		o.Logf("exec-proxy at %s, with the session policy recording ns-user's sessions, audit on", configs[config].Name)
		if err := h.restart(ctx, config); err != nil {
			return err
		}
		current = config
		return nil
	}
	for round := 0; round <= o.Rounds; round++ {
		for _, g := range stats.Turned(groups, round) {
			if err := use(g.config); err != nil {
				return nil, err
			}
			for _, c := range stats.Turned(g.cases, round) {
				for _, dir := range directions {
					if noUpload(c.path.Name, c.protocol) && dir == "upload" {
						continue
					}
					t, err := measure(ctx, o, h, c, dir, round, res)
					if err != nil {
						return nil, err
					}
					if round > 0 { // round 0 warms up, and is left out
						res.Transfers = append(res.Transfers, t)
					}
				}
			}
		}
	}
	if err := use(0); err != nil {
		return nil, err
	}
	setup := map[string][]float64{}
	batches := min(10, o.Sessions)
	for b := 0; b < batches; b++ {
		for _, p := range stats.Turned(setupPaths, b) {
			for _, protocol := range protocols {
				n := o.Sessions/batches + btoi(b < o.Sessions%batches)
				o.Logf("%s over %s: exec -- true ×%d (batch %d of %d)", p.Name, protocol, n, b+1, batches)
				ms, err := h.setup(ctx, p, protocol, n)
				if err != nil {
					return nil, err
				}
				setup[p.Name+"\x00"+protocol] = append(setup[p.Name+"\x00"+protocol], ms...)
			}
		}
	}
	var names []string
	for _, p := range setupPaths {
		names = append(names, p.Name)
		for _, protocol := range protocols {
			res.Setup = append(res.Setup, execpath.SummarizeSetup(p.Name, protocol, setup[p.Name+"\x00"+protocol]))
		}
	}
	for _, c := range configs[1:] {
		names = append(names, Route+c.Suffix, Recorded+c.Suffix)
	}
	summarize(res, names)
	return res, nil
}

// measure is one transfer with the CPU it cost; a transfer that fails is run once more.
func measure(ctx context.Context, o Options, h hooks, c kase, dir string, round int, res *Result) (Transfer, error) {
	n := o.Download
	if dir == "upload" {
		n = o.Upload
	}
	warm := map[bool]string{true: " (warm-up)"}[round == 0]
	o.Logf("round %d of %d%s: %s over %s: %s %d MiB", round, o.Rounds, warm, c.path.Name, c.protocol, dir, n>>20)
	before := h.sample()
	rate, err := h.transfer(ctx, c, dir, n)
	if err != nil {
		// Any path may fail a transfer now and then (kube-apiserver's own WebSocket path has cut a
		// GiB short): it is told in the results and run once more, rather than end the benchmark.
		o.Logf("%v: once more", err)
		res.Failed = append(res.Failed, err.Error())
		before = h.sample()
		if rate, err = h.transfer(ctx, c, dir, n); err != nil {
			return Transfer{}, err
		}
	}
	cpu, busy := Attribute(before, h.sample(), float64(n)/(1<<30))
	return Transfer{Round: round, Path: c.path.Name, Protocol: c.protocol, Direction: dir, MiBps: rate, CPUPerGiB: cpu, MachineBusy: busy}, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
