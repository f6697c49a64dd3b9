// Package setup measures what a session's setup costs on each path, for issue 28's goal "setup
// time added over direct (port-forward, no process start), with audit webhook on: ≤ kube-apiserver's
// added time at p50 and p99; the webhook adds ≤ 2 ms p50".
//
// A session is a port-forward to the demo pod (no process is started for it), timed from the
// request to the upgraded connection with its first stream pair open and the pod's answer on it,
// then closed (open). The paths: the kubelet itself (direct), kube-apiserver's pods/portforward,
// and the route to exec-proxy, with its session audit webhook on (a receiver served by the bench,
// which counts what it gets) and off; the audit log is on in both. Added time is a path's figure
// less direct's in the same round (the route without the webhook is set against direct's figure
// from the round's other slot).
//
// exec-proxy is restarted to switch the webhook, so a round has two slots: with the webhook on,
// direct, kube-apiserver and the route in an order turned each round; with it off, the route. Which
// slot comes first alternates, so that one restart a round suffices. Each case runs Sessions timed
// sessions, one at a time, after warmSessions untimed; its p50 and p99 are kept per round. Round 0
// warms up and is discarded. Per comparison, the per-round differences' median has a 95%
// bootstrap interval, beside the difference of the medians.
package setup

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/exec-proxy/exec-proxy/bench/internal/execpath"
	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

// The cases, by path and exec-proxy's webhook.
const (
	Direct    = "direct kubelet"
	APIServer = "kube-apiserver"
	RouteOn   = "route, webhook on"
	RouteOff  = "route, webhook off"
)

// Options say where the cluster is, how much to measure and how to restart exec-proxy.
type Options struct {
	Cluster  string
	Sessions int // timed per case and round
	Rounds   int // paired rounds, after a discarded warm-up
	// ExecProxyFlags are exec-proxy's flags besides the webhook's.
	ExecProxyFlags string
	// RestartExecProxy runs the cluster's exec-proxy with flags and returns once the route serves.
	RestartExecProxy func(ctx context.Context, flags string) error
	Logf             func(format string, args ...any)
}

const (
	// warmSessions are opened untimed before a case's timed ones: the case may follow a restart.
	warmSessions = 3
	// sessionTimeout bounds each session, every step of it.
	sessionTimeout = 30 * time.Second
)

// Case is one path's figures per round, in ms.
type Case struct {
	Path  string    `json:"path"`
	P50Ms []float64 `json:"p50msRounds"`
	P99Ms []float64 `json:"p99msRounds"`
	// Medians over the rounds.
	P50 float64 `json:"p50ms"`
	P99 float64 `json:"p99ms"`
}

// Received is what the bench's audit webhook received over the part.
type Received struct {
	Events int64 `json:"events"`
	// EventsWhileOff arrived while exec-proxy ran without the webhook: 0 unless it was not off.
	EventsWhileOff int64 `json:"eventsWhileOff"`
	Refused        int64 `json:"refused"` // posts that were not an EventList
	// RouteSessions went through the route with the webhook on, timed and untimed (the restarts'
	// readiness execs aside): each is audited when it starts and ends.
	RouteSessions int `json:"routeSessionsWithWebhook"`
}

// Result is the part's figures: per case and round, and the comparisons against the goals.
type Result struct {
	Port         int          `json:"port"`
	Sessions     int          `json:"sessionsPerCase"`
	WarmSessions int          `json:"warmSessionsPerCase"`
	Rounds       int          `json:"rounds"`
	Cases        []Case       `json:"cases"`
	Comparisons  []Comparison `json:"comparisons"`
	Webhook      Received     `json:"webhook"`
}

// hooks are what the rounds do on the cluster; tests replace them.
type hooks struct {
	restart func(ctx context.Context, webhook bool) error
	open    func(ctx context.Context, path string) (time.Duration, error)
	events  func() int64 // received by the webhook so far
	refused func() int64
}

// Run measures the part on the cluster. It leaves exec-proxy running with ExecProxyFlags alone.
func Run(ctx context.Context, o Options) (*Result, error) {
	paths := map[string]Path{Direct: kubeletPath(o.Cluster)}
	for name, kubeconfig := range map[string]string{APIServer: "admin-direct", RouteOn: "admin", RouteOff: "admin"} {
		cfg, err := execpath.LoadConfig(o.Cluster, kubeconfig)
		if err != nil {
			return nil, err
		}
		paths[name] = apiPath(name, cfg)
	}
	dir, err := os.MkdirTemp("", "bench-setup-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	hook, err := ServeWebhook(dir)
	if err != nil {
		return nil, err
	}
	defer hook.Close()
	// Without the webhook before it closes: exec-proxy would hold records for a receiver gone,
	// and refuse sessions once its buffer is full (fail-closed).
	defer func() { _ = o.RestartExecProxy(context.Background(), o.ExecProxyFlags) }()
	h := hooks{
		restart: func(ctx context.Context, webhook bool) error {
			flags := o.ExecProxyFlags
			if webhook {
				flags += " --session-audit-webhook-config-file=" + hook.Kubeconfig
			}
			return o.RestartExecProxy(ctx, flags)
		},
		open: func(ctx context.Context, path string) (time.Duration, error) {
			return open(ctx, paths[path], sessionTimeout)
		},
		events:  hook.Events,
		refused: hook.Refused,
	}
	return run(ctx, o, h)
}

// slot is the cases measured under one exec-proxy configuration in a round.
type slot struct {
	webhook bool
	cases   []string
}

var slots = []slot{{webhook: true, cases: []string{Direct, APIServer, RouteOn}}, {webhook: false, cases: []string{RouteOff}}}

// run measures the warm-up round and o.Rounds rounds, restarting exec-proxy only to switch its
// webhook, and summarizes them.
func run(ctx context.Context, o Options, h hooks) (*Result, error) {
	res := &Result{Port: Port, Sessions: o.Sessions, WarmSessions: warmSessions, Rounds: o.Rounds}
	byName := map[string]*Case{}
	for _, s := range slots {
		for _, name := range s.cases {
			res.Cases = append(res.Cases, Case{Path: name})
		}
	}
	for i := range res.Cases {
		byName[res.Cases[i].Path] = &res.Cases[i]
	}
	started, on := false, false // exec-proxy's configuration, once this part set it
	for round := 0; round <= o.Rounds; round++ {
		warm := map[bool]string{true: " (warm-up, discarded)"}[round == 0]
		for _, s := range stats.Turned(slots, round) {
			if !started || on != s.webhook {
				o.Logf("setup: exec-proxy with the audit webhook %s", map[bool]string{true: "on", false: "off"}[s.webhook])
				if err := h.restart(ctx, s.webhook); err != nil {
					return nil, err
				}
				started, on = true, s.webhook
			}
			before := h.events()
			for _, name := range stats.Turned(s.cases, round) {
				p50, p99, err := measure(ctx, h, name, o.Sessions)
				if err != nil {
					return nil, fmt.Errorf("setup: round %d: %w", round, err)
				}
				o.Logf("setup, round %d of %d%s: %s: port-forward setup ×%d p50 %.2f ms, p99 %.2f ms", round, o.Rounds, warm, name, o.Sessions, p50, p99)
				if name == RouteOn {
					res.Webhook.RouteSessions += warmSessions + o.Sessions
				}
				if round > 0 {
					c := byName[name]
					c.P50Ms, c.P99Ms = append(c.P50Ms, p50), append(c.P99Ms, p99)
				}
			}
			if !s.webhook {
				res.Webhook.EventsWhileOff += h.events() - before
			}
		}
	}
	res.Webhook.Events, res.Webhook.Refused = h.events(), h.refused()
	summarize(res)
	return res, nil
}

// measure opens warmSessions untimed sessions on path, then n timed, one at a time, and returns
// the timed ones' p50 and p99 in ms.
func measure(ctx context.Context, h hooks, path string, n int) (p50, p99 float64, err error) {
	ms := make([]float64, 0, n)
	for i := range warmSessions + n {
		d, err := h.open(ctx, path)
		if err != nil {
			return 0, 0, err
		}
		if i >= warmSessions {
			ms = append(ms, float64(d)/float64(time.Millisecond))
		}
	}
	slices.Sort(ms)
	return stats.Percentile(ms, 50), stats.Percentile(ms, 99), nil
}
