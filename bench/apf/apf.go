// Package apf measures another user's reads beside idle sessions held through exec-proxy's route:
// what they cost in latency and in kube-apiserver's priority and fairness (APF) seats.
package apf

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
	"github.com/exec-proxy/exec-proxy/pkg/api"
)

// Options are the part's: sessions held, pairs of batches, reads per batch and path, the kubectl
// users run, and what it takes from the bench.
type Options struct {
	Cluster  string // the local cluster's directory
	Sessions int    // held through the route, at most MaxSessions
	Batches  int    // pairs of batches, the first a warm-up
	Reads    int    // viewer's reads of each kind per batch
	Kubectl  string // the kubectl whose get pods is timed
	// Config is the cluster's kubeconfig of that name, with no client-side rate limit.
	Config func(name string) (*rest.Config, error)
	// ExecProxyMetrics is exec-proxy's own /metrics, read straight from it, not through the route.
	ExecProxyMetrics func() ([]byte, error)
	Logf             func(format string, args ...any)
}

// hack/cluster's demo namespace, its pod that viewer's reads list, and kube-apiserver's path to
// exec-proxy's route.
const (
	namespace, pod = "demo", "demo"
	kubeRoute      = api.RoutePrefix
)

// Result is what idle sessions held through the route cost another user's reads (issue 22):
// kube-apiserver's priority and fairness (APF) holds no seat for them, so viewer's reads are
// neither queued nor refused. Batches with the sessions held and without alternate, in pairs.
type Result struct {
	Sessions int      `json:"sessions"`
	Users    []string `json:"users"`
	// SessionsActive is exec-proxy's execproxy_sessions_active in the held batches.
	SessionsActive stats.Stats `json:"sessionsActiveHeld"`
	Batches        int         `json:"batchPairs"` // counted, after one pair of warm-up
	ReadsPerBatch  int         `json:"readsPerBatch"`
	Reads          []Read      `json:"reads"`
	Held           FlowControl `json:"flowControlHeld"`
	NotHeld        FlowControl `json:"flowControlNotHeld"`
}

// Read is one way of reading viewer's pods, with the sessions held and without.
type Read struct {
	Path    string  `json:"path"` // route or kube-apiserver
	Measure string  `json:"measure"`
	Held    Latency `json:"held"`
	NotHeld Latency `json:"notHeld"`
	// AddedP50 is, over the pairs, the held batch's median minus its pair's, in ms.
	AddedP50   stats.Interval `json:"addedP50ms"`
	Failed     int            `json:"failed"` // the warm-up's included
	FirstError string         `json:"firstError,omitempty"`
}

// FlowControl is kube-apiserver's APF gauges summed over levels, the max over samples taken
// between reads (so that viewer's own read is not counted).
type FlowControl struct {
	ExecutingSeats float64 `json:"executingSeats"`
	InQueue        float64 `json:"inQueueRequests"`
	Samples        int     `json:"samples"`
}

// levels are the priority levels of the sessions' users: people's and service accounts'.
var levels = []string{"global-default", "workload-low"}

// A reader is one way of listing demo's pods as viewer.
type reader struct {
	path, measure string
	read          func(context.Context) error
}

// kubectlReader is what a user opens: a kubectl process, timed from start to exit.
func kubectlReader(bin, kubeconfig, path string) reader {
	return reader{path: path, measure: filepath.Base(bin) + " get pods (process)", read: func(ctx context.Context) error {
		out, err := exec.CommandContext(ctx, bin, "--kubeconfig", kubeconfig, "-n", namespace, "get", "pods", "-o", "name").CombinedOutput()
		if err == nil && !strings.Contains(string(out), "pod/"+pod) {
			err = fmt.Errorf("no pod/%s listed", pod)
		}
		if err != nil {
			return fmt.Errorf("kubectl --kubeconfig %s get pods: %w: %s", kubeconfig, err, strings.TrimSpace(string(out)))
		}
		return nil
	}}
}

// listReader is the request alone: client-go's List on a kept connection, no process start.
func listReader(client kubernetes.Interface) reader {
	return reader{path: "kube-apiserver", measure: "client-go List (request)", read: func(ctx context.Context) error {
		pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
		if err == nil && len(pods.Items) == 0 {
			err = fmt.Errorf("no pods listed")
		}
		if err != nil {
			return fmt.Errorf("client-go List of pods: %w", err)
		}
		return nil
	}}
}

type readerSamples struct {
	batches    [2][][]float64 // ms, one slice per batch: with the sessions held, without
	failed     int
	firstError string
}

type bench struct {
	o       Options
	admin   kubernetes.Interface
	users   map[string]*rest.Config
	readers []reader
	samples []readerSamples
	active  []float64
	res     *Result
}

// Run measures the part on exec-proxy as the cluster runs it (its default per-user cap and start
// rate, pass-through on), which the caller has started.
func Run(ctx context.Context, o Options) (*Result, error) {
	if _, err := os.Stat(o.Kubectl); err != nil {
		return nil, fmt.Errorf("the apf part's kubectl (-kubectl): %w", err)
	}
	a := &bench{o: o, res: &Result{Sessions: o.Sessions, Batches: o.Batches - 1, ReadsPerBatch: o.Reads}}
	var viewer kubernetes.Interface
	var err error
	if a.admin, err = a.clientOf("cluster-admin"); err != nil {
		return nil, err
	}
	if viewer, err = a.clientOf("viewer-direct"); err != nil {
		return nil, err
	}
	kubeconfig := func(name string) string { return filepath.Join(o.Cluster, "kubeconfig", name+".kubeconfig") }
	a.readers = []reader{kubectlReader(o.Kubectl, kubeconfig("viewer"), "route"),
		kubectlReader(o.Kubectl, kubeconfig("viewer-direct"), "kube-apiserver"), listReader(viewer)}
	defer removeUsers(context.Background(), a.admin, o.Logf)
	if a.users, err = createUsers(ctx, a.admin, o.Config); err != nil {
		return nil, err
	}
	for u := range a.users {
		a.res.Users = append(a.res.Users, u)
	}
	sort.Strings(a.res.Users)
	a.samples = make([]readerSamples, len(a.readers))
	if err := a.waitNoSessions(ctx); err != nil {
		return nil, err
	}
	for b := range o.Batches {
		for _, held := range stats.Turned([]bool{true, false}, b) {
			if err := a.batch(ctx, b, held); err != nil {
				return nil, err
			}
		}
	}
	a.res.SessionsActive = stats.Summarize(a.active)
	for i, r := range a.readers {
		s := a.samples[i]
		read := Read{Path: r.path, Measure: r.measure, Failed: s.failed, FirstError: s.firstError}
		read.Held, read.NotHeld, read.AddedP50 = pairedReads(s.batches[0], s.batches[1])
		a.res.Reads = append(a.res.Reads, read)
	}
	return a.res, nil
}

// batch reads o.Reads times each way, with the sessions held through the route or with none;
// batch 0 is the warm-up (kubectl's discovery cache, connections, the page cache) and not kept.
func (a *bench) batch(ctx context.Context, b int, held bool) error {
	var conns []httpstream.Connection
	defer func() { closeAll(conns) }()
	what := "no session held"
	if held {
		what = fmt.Sprintf("%d idle sessions held through the route", a.o.Sessions)
		a.o.Logf("apf batch %d of %d: opening %d idle port-forwards through the route as %d users", b+1, a.o.Batches, a.o.Sessions, len(a.users))
		var err error
		if conns, err = holdRouteSessions(ctx, a.users, a.o.Sessions); err != nil {
			return err
		}
		n, err := a.activeSessions()
		if err != nil {
			return err
		}
		if b > 0 {
			a.active = append(a.active, n)
		}
	}
	a.o.Logf("apf batch %d of %d, %s: viewer reads demo's pods ×%d each way", b+1, a.o.Batches, what, a.o.Reads)
	ms := make([][]float64, len(a.readers))
	var fc FlowControl
	for i := range a.o.Reads {
		for _, r := range stats.TurnedOrder(len(a.readers), i) {
			start := time.Now()
			err := a.readers[r].read(ctx)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				a.samples[r].failed++
				if a.samples[r].firstError == "" {
					a.samples[r].firstError = err.Error()
				}
				a.o.Logf("apf: %v", err)
				continue
			}
			ms[r] = append(ms[r], float64(time.Since(start).Microseconds())/1000)
		}
		if i%4 == 0 {
			s, err := flowControl(ctx, a.admin)
			if err != nil {
				return err
			}
			fc.add(s)
		}
	}
	if held {
		closeAll(conns)
		conns = nil
		if err := a.waitNoSessions(ctx); err != nil {
			return err
		}
	}
	if b == 0 {
		return nil
	}
	k := 0 // readerSamples.batches: with the sessions held, without
	if !held {
		k = 1
	}
	for r := range ms {
		a.samples[r].batches[k] = append(a.samples[r].batches[k], ms[r])
	}
	if held {
		a.res.Held.add(fc)
	} else {
		a.res.NotHeld.add(fc)
	}
	return nil
}

func (a *bench) clientOf(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := a.o.Config(kubeconfig)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client of %s: %w", kubeconfig, err)
	}
	return client, nil
}

// flowControl samples kube-apiserver's APF gauges of levels.
func flowControl(ctx context.Context, client kubernetes.Interface) (FlowControl, error) {
	body, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return FlowControl{}, fmt.Errorf("kube-apiserver's /metrics: %w", err)
	}
	seats := sumByLabel(string(body), "apiserver_flowcontrol_current_executing_seats", "priority_level")
	queued := sumByLabel(string(body), "apiserver_flowcontrol_current_inqueue_requests", "priority_level")
	f := FlowControl{Samples: 1}
	for _, level := range levels {
		f.ExecutingSeats += seats[level]
		f.InQueue += queued[level]
	}
	return f, nil
}

// add takes the max of each gauge with s's and counts its samples.
func (f *FlowControl) add(s FlowControl) {
	f.ExecutingSeats, f.InQueue = max(f.ExecutingSeats, s.ExecutingSeats), max(f.InQueue, s.InQueue)
	f.Samples += s.Samples
}
