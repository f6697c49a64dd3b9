// Command bench measures exec-proxy against kube-apiserver's own pods/exec path and a direct
// kubelet connection on the local cluster (hack/cluster/up.sh), side by side in one run, and
// reports ratios: a table on stdout, results.json and a PNG chart, beside it in bench/ by default.
// Run again with the single argument tlsrelay.Arg, it is the throughput part's bare TLS relay.
// Run it with make bench.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/exec-proxy/exec-proxy/bench/apf"
	"github.com/exec-proxy/exec-proxy/bench/concurrent"
	"github.com/exec-proxy/exec-proxy/bench/idle"
	"github.com/exec-proxy/exec-proxy/bench/idleexec"
	"github.com/exec-proxy/exec-proxy/bench/internal/execpath"
	"github.com/exec-proxy/exec-proxy/bench/internal/proc"
	"github.com/exec-proxy/exec-proxy/bench/keystroke"
	"github.com/exec-proxy/exec-proxy/bench/kubeletws"
	"github.com/exec-proxy/exec-proxy/bench/setup"
	"github.com/exec-proxy/exec-proxy/bench/tlsrelay"
	"k8s.io/client-go/rest"
)

type options struct {
	cluster, out, profiles string
	download, upload       int64
	runs, sessions, idle   int
	idleRuns               int
	throttleBytesPerSecond int64
	burst                  int
	apf                    apf.Options
	kubeletWS              kubeletws.Options
	idleExec               idleexec.Options
	keystroke              keystroke.Options
	idleOpts               idle.Options
	concurrent             concurrent.Options
	setup                  setup.Options
	parts                  map[string]bool
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == tlsrelay.Arg { // the throughput part's relay, a process of its own
		if err := tlsrelay.Main(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench tls relay:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.cluster, "cluster", ".cluster", "the local cluster's directory")
	flag.StringVar(&o.out, "out", "bench", "where results.json and the chart go")
	flag.StringVar(&o.profiles, "profiles", "bench/out/profiles", "where exec-proxy's and kube-apiserver's pprof profiles go (empty: none)")
	flag.Int64Var(&o.download, "download-bytes", 512<<20, "bytes streamed from the container per download run")
	flag.Int64Var(&o.upload, "upload-bytes", 256<<20, "bytes streamed into the container per upload run")
	flag.IntVar(&o.runs, "runs", 10, "paired rounds of the throughput figures, after a discarded warm-up: each measures every path once")
	flag.IntVar(&o.sessions, "sessions", 200, "sessions timed for the setup latency of each path")
	flag.IntVar(&o.idle, "idle-sessions", 10000, "idle sessions held open on one exec-proxy (two open files each in exec-proxy: see the open-file limits in the table)")
	flag.IntVar(&o.idleRuns, "idle-runs", 3, "times the idle sessions are held, each on a freshly started exec-proxy")
	flag.DurationVar(&o.idleOpts.Settle, "idle-settle", 10*time.Second, "how long each idle path's sessions are held before its quiet window, and how long after they are closed the next path's are opened")
	flag.DurationVar(&o.idleOpts.EmptyWindow, "idle-empty-window", 20*time.Second, "window over which each idle path's process is watched with no session held, before they are opened: what it spends anyway, not counted per ping")
	flag.DurationVar(&o.idleOpts.Quiet, "idle-quiet", 150*time.Second, "window over which exec-proxy's CPU is measured while the idle sessions are held; over 2 minutes, so that the runtime's forced collection ends in it and the GC figure is shown")
	flag.Int64Var(&o.throttleBytesPerSecond, "throttle-bytes-per-sec", 16<<20, "--max-bytes-per-sec-per-session for the throttle figure")
	flag.IntVar(&o.burst, "throttle-burst", 10, "--session-start-burst for the throttle figure")
	flag.IntVar(&o.apf.Sessions, "apf-sessions", apf.MaxSessions, "idle sessions held through the route for the apf figure, spread over four users (at most 50 each, exec-proxy's default cap)")
	flag.IntVar(&o.apf.Batches, "apf-batches", 11, "pairs of apf batches (one with the sessions held, one without), the first a warm-up")
	flag.IntVar(&o.apf.Reads, "apf-reads", 20, "viewer's reads of each kind per apf batch")
	flag.StringVar(&o.apf.Kubectl, "kubectl", "/usr/lib/google-cloud-sdk/bin/kubectl.1.33", "the kubectl whose get pods the apf part times")
	flag.IntVar(&o.idleExec.Sessions, "idle-exec-sessions", 40, "kubectl exec -i sessions held per measurement of the idleexec part")
	flag.IntVar(&o.idleExec.Rounds, "idle-exec-rounds", 10, "paired rounds of the idleexec part, after a warm-up")
	flag.IntVar(&o.keystroke.Echoes, "keystroke-echoes", 300, fmt.Sprintf("keystrokes per session of the keystroke part, at most %d", keystroke.MaxEchoes))
	flag.IntVar(&o.keystroke.Rounds, "keystroke-rounds", 10, "paired rounds of the keystroke part, after a warm-up")
	flag.IntVar(&o.setup.Sessions, "setup-sessions", 100, "port-forward sessions timed per case and round of the setup part")
	flag.IntVar(&o.setup.Rounds, "setup-rounds", 10, "paired rounds of the setup part, after a warm-up")
	flag.IntVar(&o.kubeletWS.Rounds, "kubeletws-rounds", 10, "paired rounds of the kubeletws part, after a warm-up")
	flag.IntVar(&o.concurrent.Sessions, "concurrent-sessions", 64, "kubectl exec downloads started together in the concurrent part")
	flag.IntVar(&o.concurrent.Rounds, "concurrent-rounds", 10, "paired rounds of the concurrent part, after a warm-up")
	flag.DurationVar(&o.concurrent.Window, "concurrent-window", 10*time.Second, "window over which each concurrent download's bytes are counted, once all flow")
	flag.Int64Var(&o.kubeletWS.Bytes, "kubeletws-bytes", 256<<20, "bytes per download of the kubeletws part, a multiple of 65536")
	parts := flag.String("parts", "throughput,admission,apf,throttle,idle,idleexec,keystroke,concurrent,setup", "which parts to measure: throughput (paired rounds on the kubelet, a bare TLS relay, kube-apiserver and the route recorded and not at two GOGC settings, with setup latency, CPU of every process and CPU profiles), admission (what a ValidatingAdmissionPolicy adds to setup), apf (another user's get pods with idle sessions held through the route, and kube-apiserver's seats), throttle, idle (port-forwards straight to exec-proxy, by the thousand: memory, CPU and GC held quiet, still usable; the same held on a bare TLS relay and kube-apiserver for their CPU), idleexec (stock kubectl 1.28 and 1.33 exec sessions held idle through the route and on kube-apiserver's path: memory of both servers), keystroke (one byte's round trip in stock kubectl 1.28 and 1.33 exec -i and -it ... cat, through the route and on kube-apiserver's path, idle and beside a download), concurrent (stock kubectl 1.28 and 1.33 downloads started together, through the route and on kube-apiserver's path: aggregate rate and Jain's fairness), setup (a port-forward's setup time, client-go SPDY, on the kubelet, kube-apiserver's path and the route with exec-proxy's audit webhook on and off); profiles alone; kubeletws alone (WebSocket to a kubelet that serves it and to one that does not: a mixed cluster, see hack/bench.sh), written to kubelet-websocket.{json,txt}")
	mergeFrom := flag.String("merge", "", "comma-separated results.json files of runs of separate parts: write their figures together to -out, measuring nothing")
	flag.Parse()
	if *mergeFrom != "" {
		r, err := merge(strings.Split(*mergeFrom, ","))
		if err == nil {
			err = report(r, o.out)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	o.parts = map[string]bool{}
	for _, p := range strings.Split(*parts, ",") {
		o.parts[strings.TrimSpace(p)] = true
	}
	if o.download%65536 != 0 || o.download <= 0 || o.upload <= 0 || o.runs < 1 || o.sessions < 1 || o.idle < 0 || o.idleRuns < 1 || o.burst < 1 {
		fmt.Fprintln(os.Stderr, "bench: -download-bytes must be a positive multiple of 65536; sizes, runs, sessions and burst positive")
		os.Exit(2)
	}
	if o.apf.Sessions < 1 || o.apf.Sessions > apf.MaxSessions || o.apf.Batches < 2 || o.apf.Reads < 1 {
		fmt.Fprintf(os.Stderr, "bench: -apf-sessions from 1 to %d (four users at exec-proxy's per-user cap), -apf-batches at least 2 (one is the warm-up), -apf-reads positive\n", apf.MaxSessions)
		os.Exit(2)
	}
	if o.idleExec.Sessions < 1 || o.idleExec.Rounds < 2 {
		fmt.Fprintln(os.Stderr, "bench: -idle-exec-sessions positive, -idle-exec-rounds at least 2")
		os.Exit(2)
	}
	if o.keystroke.Echoes < 1 || o.keystroke.Echoes > keystroke.MaxEchoes || o.keystroke.Rounds < 2 {
		fmt.Fprintf(os.Stderr, "bench: -keystroke-echoes from 1 to %d, -keystroke-rounds at least 2\n", keystroke.MaxEchoes)
		os.Exit(2)
	}
	if o.concurrent.Sessions < 1 || o.concurrent.Rounds < 2 || o.concurrent.Window < time.Second || o.idleOpts.Quiet < time.Second || o.idleOpts.Settle < 0 || o.idleOpts.EmptyWindow < time.Second {
		fmt.Fprintln(os.Stderr, "bench: -concurrent-sessions positive, -concurrent-rounds at least 2, -concurrent-window, -idle-quiet and -idle-empty-window at least 1s, -idle-settle not negative")
		os.Exit(2)
	}
	if o.setup.Sessions < 1 || o.setup.Rounds < 2 {
		fmt.Fprintln(os.Stderr, "bench: -setup-sessions positive, -setup-rounds at least 2")
		os.Exit(2)
	}
	if o.kubeletWS.Rounds < 1 || o.kubeletWS.Bytes <= 0 || o.kubeletWS.Bytes%65536 != 0 {
		fmt.Fprintln(os.Stderr, "bench: -kubeletws-rounds positive, -kubeletws-bytes a positive multiple of 65536")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.parts["kubeletws"] {
		if err := runKubeletWS(ctx, o); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	res, err := run(ctx, o)
	if err == nil {
		err = report(res, o.out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	fmt.Println("results:", filepath.Join(o.out, "results.json"), filepath.Join(o.out, "ratios.png"))
}

// runKubeletWS measures the kubeletws part alone, on a mixed cluster, into out/kubelet-websocket.*.
func runKubeletWS(ctx context.Context, o options) error {
	k := o.kubeletWS
	k.Logf = logf
	k.Config = func(name string) (*rest.Config, error) { return execpath.LoadConfig(o.cluster, name) }
	k.CPUSeconds = func(process string) (float64, error) { return proc.CPUSeconds(o.cluster, process) }
	k.ExecProxyMetrics = func() ([]byte, error) { return straightGet(adminStraight(o.cluster), "/metrics", 10*time.Second) }
	res, err := kubeletws.Run(ctx, k)
	if err != nil {
		return err
	}
	var js, table bytes.Buffer
	if err := kubeletws.Write(res, &js, &table); err != nil {
		return err
	}
	for name, b := range map[string][]byte{"kubelet-websocket.json": js.Bytes(), "kubelet-websocket.txt": table.Bytes()} {
		if err := os.WriteFile(filepath.Join(o.out, name), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Print(table.String())
	return nil
}
