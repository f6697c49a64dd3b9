// Package concurrent measures many sessions transferring at once, as users open them: Sessions
// stock kubectl exec downloads (kubectl 1.28 over SPDY, 1.33 over WebSocket) started together, on
// the route and on kube-apiserver's own path, in paired rounds. Each session's stdout bytes are
// counted over one fixed window once every session is flowing, so every session is measured over
// the same time: the aggregate rate is their sum, and Jain's fairness index is over their rates.
// A fixed size instead would let the first to finish run alone at the end, and the rates would
// measure when each started as much as how the path shares.
package concurrent

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/exec-proxy/exec-proxy/bench/internal/execpath"
	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

// Goals of issue 28: the route's aggregate at least 0.95× kube-apiserver's path, and Jain's index
// at least 0.95.
const (
	AggregateGoal = 0.95
	JainGoal      = 0.95
)

// Options say where the cluster is and how much to run.
type Options struct {
	Cluster    string // the local cluster's directory: kubeconfig/, run/*.pid
	KubectlDir string // kubectl.1.28 and kubectl.1.33
	Sessions   int
	Rounds     int           // paired rounds after the warm-up
	Window     time.Duration // the measuring window, once every session is flowing
	// Restart starts exec-proxy afresh as this part wants it: every session cap off.
	Restart func(ctx context.Context) error
	Logf    func(format string, args ...any)
}

// Round is one case's measurement in one round.
type Round struct {
	Seconds      float64   `json:"seconds"`
	MiBps        float64   `json:"mibPerSec"` // the sessions' sum
	Jain         float64   `json:"jain"`
	SessionMiBps []float64 `json:"sessionMiBPerSec"`
	// Over the window: the machine's busy share, the share of the machine's CPU the clients took
	// (the kubectl processes and the bench counting their output), and each server's cores.
	MachineBusy float64            `json:"machineBusy"`
	ClientShare float64            `json:"clientShare"`
	ServerCores map[string]float64 `json:"serverCores,omitempty"`
}

// Case is one kubectl on one path.
type Case struct {
	Kubectl  string  `json:"kubectl"`
	Protocol string  `json:"protocol"`
	Path     string  `json:"path"` // route or kube-apiserver
	Rounds   []Round `json:"rounds"`
	// Over the rounds: aggregate MiB/s and Jain's index with their 95% intervals.
	MiBps       stats.Interval `json:"mibPerSec"`
	Jain        stats.Interval `json:"jain"`
	JainVerdict string         `json:"jainVerdict"`
	MachineBusy stats.Stats    `json:"machineBusy"`
	ClientShare stats.Stats    `json:"clientShare"`
}

// Ratio is the route's aggregate ÷ kube-apiserver's path's with the same kubectl.
type Ratio struct {
	Protocol       string         `json:"protocol"`
	Rounds         []float64      `json:"rounds"`
	Paired         stats.Interval `json:"paired"`
	RatioOfMedians float64        `json:"ratioOfMedians"`
	Verdict        string         `json:"verdict"`
}

// Result is every case of the part.
type Result struct {
	Sessions      int     `json:"sessions"`
	Rounds        int     `json:"rounds"`
	WindowSeconds float64 `json:"windowSeconds"`
	Cases         []Case  `json:"cases"`
	Ratios        []Ratio `json:"ratios"`
}

var kubectls = []struct{ version, protocol string }{{"1.28", "SPDY"}, {"1.33", "WebSocket"}}

// Run measures every kubectl on both paths, Rounds times after a discarded warm-up, in an order
// turned each round so that the machine's drift is shared.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.Logf("concurrent: exec-proxy restarted with every session cap off (--max-sessions-per-user is 50 and --session-start-burst 20 by default), no audit, no recording")
	if err := o.Restart(ctx); err != nil {
		return nil, err
	}
	res := &Result{Sessions: o.Sessions, Rounds: o.Rounds, WindowSeconds: o.Window.Seconds()}
	for _, k := range kubectls {
		for _, p := range []string{"route", "kube-apiserver"} {
			res.Cases = append(res.Cases, Case{Kubectl: "kubectl." + k.version, Protocol: k.protocol, Path: p})
		}
	}
	for round := 0; round <= o.Rounds; round++ {
		for _, i := range stats.TurnedOrder(len(res.Cases), round) {
			c := &res.Cases[i]
			r, err := measure(ctx, o, filepath.Join(o.KubectlDir, c.Kubectl), execpath.AdminKubeconfig(o.Cluster, c.Path))
			if err != nil {
				return nil, fmt.Errorf("concurrent: %s on %s: %w", c.Kubectl, c.Path, err)
			}
			o.Logf("concurrent, round %d of %d%s: %s on %s: %d sessions, %.0f MiB/s together, Jain %.3f, machine busy %.0f%% (clients %.0f%%)",
				round, o.Rounds, map[bool]string{true: " (warm-up, discarded)"}[round == 0], c.Kubectl, c.Path, o.Sessions, r.MiBps, r.Jain, 100*r.MachineBusy, 100*r.ClientShare)
			if round > 0 {
				c.Rounds = append(c.Rounds, r)
			}
		}
	}
	summarize(res)
	return res, nil
}

// Jain is Jain's fairness index of xs: (Σx)² ÷ (n·Σx²), 1 when all are equal, 1/n when one has
// everything; 0 for no samples or all zero.
func Jain(xs []float64) float64 {
	var sum, squares float64
	for _, x := range xs {
		sum, squares = sum+x, squares+x*x
	}
	if squares == 0 {
		return 0
	}
	return sum * sum / (float64(len(xs)) * squares)
}

// summarize fills each case's intervals and verdicts, and the route's paired ratios.
func summarize(res *Result) {
	for i := range res.Cases {
		c := &res.Cases[i]
		var rate, jain, busy, client []float64
		for _, r := range c.Rounds {
			rate, jain = append(rate, r.MiBps), append(jain, r.Jain)
			busy, client = append(busy, r.MachineBusy), append(client, r.ClientShare)
		}
		c.MiBps, c.Jain = stats.BootstrapMedian(rate, 10000), stats.BootstrapMedian(jain, 10000)
		c.JainVerdict = stats.Verdict(c.Jain, len(jain), JainGoal, true)
		c.MachineBusy, c.ClientShare = stats.Summarize(busy), stats.Summarize(client)
	}
	res.Ratios = nil
	for _, route := range res.Cases {
		if route.Path != "route" {
			continue
		}
		for _, base := range res.Cases {
			if base.Path != "kube-apiserver" || base.Kubectl != route.Kubectl {
				continue
			}
			r := Ratio{Protocol: route.Protocol}
			for n := range route.Rounds {
				if n < len(base.Rounds) && base.Rounds[n].MiBps > 0 {
					r.Rounds = append(r.Rounds, route.Rounds[n].MiBps/base.Rounds[n].MiBps)
				}
			}
			r.Paired = stats.BootstrapMedian(r.Rounds, 10000)
			if base.MiBps.Median > 0 {
				r.RatioOfMedians = route.MiBps.Median / base.MiBps.Median
			}
			r.Verdict = stats.Verdict(r.Paired, len(r.Rounds), AggregateGoal, true)
			res.Ratios = append(res.Ratios, r)
		}
	}
}

// cleanup ends what the sessions left running in the container: the kubelet does not end an exec's
// process when its connection drops, and a download whose output the runtime still holds would
// run on, holding files in the pod's shim until it has none left. The demo image's busybox has no
// pkill: /proc is walked.
const cleanupScript = `left() { n=0; for p in /proc/[0-9]*; do case "$(cat $p/comm 2>/dev/null)" in yes|dd) n=$((n+1)); [ "$1" = kill ] && kill ${p#/proc/} 2>/dev/null;; esac; done; echo $n; }
left kill >/dev/null; sleep 1; left`

func cleanup(ctx context.Context, o Options) error {
	kubectl := filepath.Join(o.KubectlDir, "kubectl."+kubectls[0].version)
	cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", execpath.AdminKubeconfig(o.Cluster, "kube-apiserver"), "-n", "demo", "exec", "demo", "-c", "main", "--",
		"sh", "-c", cleanupScript)
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("ending the downloads left in the container: %w", err)
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(string(out))); n > 0 {
		o.Logf("concurrent: %d downloads still running in the container after pkill", n)
	}
	return nil
}
