package throughput

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/exec-proxy/exec-proxy/bench/internal/execpath"
	"github.com/exec-proxy/exec-proxy/bench/internal/proc"
)

// exec-proxy's hop against a bare one: the route ÷ kube-apiserver's path over the relay ÷ the direct
// kubelet, round by round; a round without one of the four paths is left out.
func TestHopRatio(t *testing.T) {
	var ts []Transfer
	add := func(round int, path string, rate float64) {
		ts = append(ts, Transfer{Round: round, Path: path, Protocol: "spdy", Direction: "download", MiBps: rate})
	}
	// Round 1: the route loses 20% to kube-apiserver's path, a bare hop 10%; round 2: both 10%.
	for _, r := range []struct {
		round                     int
		direct, relay, api, route float64
	}{{1, 200, 180, 180, 144}, {2, 100, 90, 90, 81}, {3, 100, 90, 90, 0}} {
		add(r.round, Direct, r.direct)
		add(r.round, Relay, r.relay)
		add(r.round, APIServer, r.api)
		if r.route > 0 {
			add(r.round, Route, r.route)
		}
	}
	add(4, Route, 50) // a round with the route alone
	got := hopRatio(ts, "spdy", "download")
	want := []float64{0.8 / 0.9, 1}
	if len(got.Rounds) != len(want) {
		t.Fatalf("rounds %v, want %v", got.Rounds, want)
	}
	for i := range want {
		if d := got.Rounds[i] - want[i]; d > 1e-9 || d < -1e-9 {
			t.Errorf("round %d: %v, want %v", i+1, got.Rounds[i], want[i])
		}
	}
	if got.Of != "("+Route+" ÷ "+APIServer+")" || got.Over != "("+Relay+" ÷ "+Direct+")" || got.Goal != nil {
		t.Errorf("hopRatio = %+v", got)
	}
	if none := hopRatio(ts, "spdy", "upload"); len(none.Rounds) != 0 || none.OfMedians != 0 {
		t.Errorf("no upload transfers: %+v", none)
	}
}

// Resummarize gives a result measured before a ratio was added that ratio, from its transfers, and
// the same figures in the same order.
func TestResummarize(t *testing.T) {
	var ts []Transfer
	for round := 1; round <= 3; round++ {
		for path, rate := range map[string]float64{Direct: 200, Relay: 180, APIServer: 180, Route: 162} {
			ts = append(ts, Transfer{Round: round, Path: path, Protocol: "spdy", Direction: "download", MiBps: rate})
		}
	}
	res := &Result{Transfers: ts}
	summarize(res, []string{Direct, Relay, APIServer, Route})
	figures := fmt.Sprint(res.Figures)
	var old []Ratio
	for _, r := range res.Ratios {
		if r.Name != "throughput kept across exec-proxy's hop ÷ across a bare TLS hop" {
			old = append(old, r)
		}
	}
	res.Ratios = old
	Resummarize(res)
	if fmt.Sprint(res.Figures) != figures {
		t.Errorf("figures changed:\n%s\n%s", fmt.Sprint(res.Figures), figures)
	}
	var hop *Ratio
	for i, r := range res.Ratios {
		if r.Name == "throughput kept across exec-proxy's hop ÷ across a bare TLS hop" && r.Direction == "download" {
			hop = &res.Ratios[i]
		}
	}
	if hop == nil || len(hop.Rounds) != 3 || hop.Paired.Median < 0.9999 || hop.Paired.Median > 1.0001 {
		t.Errorf("the hop's ratio after Resummarize: %+v, want 3 rounds of 1× (162/180 over 180/200)", hop)
	}
}

// The paired ratio is the median of each round's ratio; the ratio of medians is beside it, and
// differs from it when the rounds drift.
func TestRatio(t *testing.T) {
	var ts []Transfer
	add := func(round int, path string, rate, cpu float64) {
		ts = append(ts, Transfer{Round: round, Path: path, Protocol: "spdy", Direction: "download", MiBps: rate, CPUPerGiB: map[string]float64{"exec-proxy": cpu}})
	}
	// The machine runs at 100, 50, 80 MiB/s in rounds 1-3; the route is 0.9× each time.
	for i, speed := range []float64{100, 50, 80} {
		add(i+1, APIServer, speed, 0)
		add(i+1, Route, 0.9*speed, 2+float64(i))
	}
	add(4, Route, 1000, 0) // no baseline that round: left out
	for _, c := range []struct {
		name             string
		of, over         side
		goal             *Goal
		wantRounds       []float64
		wantOfMedians    float64
		wantMedian       float64
		wantVerdict      string
		wantOf, wantOver string
	}{
		{"throughput", side{path: Route}, side{path: APIServer}, goalVsAPIServer, []float64{0.9, 0.9, 0.9}, 72.0 / 80, 0.9, NotMet, Route, APIServer},
		{"cpu over rate, no goal", side{path: Route, process: "exec-proxy"}, side{path: APIServer}, nil, []float64{0.02, 0.06, 0.05}, 3.0 / 80, 0.05, "", Route + " (exec-proxy CPU/GiB)", APIServer},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ratio(ts, c.name, "spdy", "download", c.of, c.over, c.goal, "")
			if len(r.Rounds) != len(c.wantRounds) {
				t.Fatalf("rounds %v, want %v", r.Rounds, c.wantRounds)
			}
			for i := range r.Rounds {
				if d := r.Rounds[i] - c.wantRounds[i]; d > 1e-9 || d < -1e-9 {
					t.Errorf("round %d: %v, want %v", i+1, r.Rounds[i], c.wantRounds[i])
				}
			}
			if d := r.OfMedians - c.wantOfMedians; d > 1e-9 || d < -1e-9 {
				t.Errorf("ratio of medians %v, want %v", r.OfMedians, c.wantOfMedians)
			}
			if d := r.Paired.Median - c.wantMedian; d > 1e-9 || d < -1e-9 {
				t.Errorf("paired median %v, want %v", r.Paired.Median, c.wantMedian)
			}
			if r.Verdict != c.wantVerdict || r.Of != c.wantOf || r.Over != c.wantOver {
				t.Errorf("verdict %q of %q over %q, want %q of %q over %q", r.Verdict, r.Of, r.Over, c.wantVerdict, c.wantOf, c.wantOver)
			}
		})
	}
}

// fakeCluster stands for the paths: each transfer runs at its path's rate and spends CPU in
// exec-proxy and the relay as the path would, with the machine's speed drifting by round.
type fakeCluster struct {
	round     int
	cpu       map[string]float64 // seconds so far, by process
	order     []string           // what was measured, in order
	restarts  []int
	config    int
	failOnce  map[string]bool
	setupRuns map[string]int
}

var rates = map[string]float64{Direct: 110, Relay: 105, APIServer: 100, Route: 96, Recorded: 92, Route + " GOGC=100": 97, Recorded + " GOGC=100": 94}

func (f *fakeCluster) hooks() hooks {
	return hooks{
		transfer: func(_ context.Context, c kase, dir string, n int64) (float64, error) {
			key := fmt.Sprintf("%s/%s/%s", c.path.Name, c.protocol, dir)
			if f.failOnce[key] {
				delete(f.failOnce, key)
				return 0, errors.New(key + ": cut short")
			}
			if c.config >= 0 && c.config != f.config {
				return 0, fmt.Errorf("%s measured with exec-proxy at configuration %d", c.path.Name, f.config)
			}
			f.order = append(f.order, key)
			gib := float64(n) / (1 << 30)
			switch {
			case c.path.Name == Relay:
				f.cpu["tls relay"] += 2 * gib
			case strings.HasPrefix(c.path.Name, "exec-proxy"):
				f.cpu["exec-proxy"] += 2.2 * gib
			}
			f.cpu["machine"] += 20 * gib
			return rates[c.path.Name] * (1 + 0.1*float64(len(f.order)%3)), nil
		},
		sample: func() Snapshot {
			s := Snapshot{Procs: map[string]pidTimes{}, Busy: f.cpu["machine"], Total: 2 * f.cpu["machine"]}
			for _, name := range []string{"exec-proxy", "tls relay"} {
				s.Procs[name] = pidTimes{Pid: 1 + len(name), Times: proc.Times{Own: f.cpu[name]}}
			}
			return s
		},
		restart: func(_ context.Context, config int) error {
			f.restarts = append(f.restarts, config)
			f.config = config
			return nil
		},
		setup: func(_ context.Context, p execpath.Path, protocol string, k int) ([]float64, error) {
			f.setupRuns[p.Name+"/"+protocol] += k
			if f.config != 0 {
				return nil, fmt.Errorf("setup at configuration %d", f.config)
			}
			return make([]float64, k), nil
		},
	}
}

func testGroups() ([]group, []execpath.Path) {
	p := func(name string) execpath.Path { return execpath.Path{Name: name} }
	groups := []group{{-1, cases(-1, p(Direct))}, {-1, cases(-1, p(Relay))}, {-1, cases(-1, p(APIServer))}}
	for i, c := range configs {
		groups = append(groups, group{i, cases(i, p(Route+c.Suffix), p(Recorded+c.Suffix))})
	}
	return groups, []execpath.Path{p(Direct), p(Relay), p(APIServer), p(Route), p(Recorded)}
}

func TestRun(t *testing.T) {
	f := &fakeCluster{cpu: map[string]float64{}, config: -1, failOnce: map[string]bool{"kube-apiserver/websocket/download": true}, setupRuns: map[string]int{}}
	groups, setupPaths := testGroups()
	o := Options{Download: 1 << 30, Upload: 256 << 20, Rounds: 5, Sessions: 25, Logf: func(string, ...any) {}}
	res, err := run(context.Background(), o, f.hooks(), groups, setupPaths)
	if err != nil {
		t.Fatal(err)
	}
	// Every round, the warm-up too, measures each case once: 7 paths × 2 protocols × 2
	// directions, less the WebSocket uploads to the kubelet and through the relay.
	const perRound = 7*2*2 - 2
	if len(f.order) != (o.Rounds+1)*perRound {
		t.Fatalf("%d transfers, want %d", len(f.order), (o.Rounds+1)*perRound)
	}
	if len(res.Transfers) != o.Rounds*perRound {
		t.Errorf("%d transfers kept, want %d: the warm-up's left out", len(res.Transfers), o.Rounds*perRound)
	}
	count := map[string]int{}
	for _, tr := range res.Transfers {
		if tr.Round < 1 || tr.Round > o.Rounds {
			t.Errorf("a transfer of round %d", tr.Round)
		}
		count[fmt.Sprintf("%d %s/%s/%s", tr.Round, tr.Path, tr.Protocol, tr.Direction)]++
	}
	for k, n := range count {
		if n != 1 {
			t.Errorf("%s measured %d times", k, n)
		}
	}
	if len(count) != o.Rounds*perRound {
		t.Errorf("%d distinct transfers, want %d", len(count), o.Rounds*perRound)
	}
	// The order turns: each round starts elsewhere.
	first := map[string]bool{}
	for r := 0; r <= o.Rounds; r++ {
		first[f.order[r*perRound]] = true
	}
	if len(first) < 4 {
		t.Errorf("rounds start with %v: the order does not turn", first)
	}
	// At most two restarts a round (one per configuration), plus the one for setup latency.
	if len(f.restarts) > 2*(o.Rounds+1)+1 {
		t.Errorf("%d restarts for %d rounds: %v", len(f.restarts), o.Rounds+1, f.restarts)
	}
	if len(res.Failed) != 1 {
		t.Errorf("failed %v, want the one cut short", res.Failed)
	}
	for _, p := range setupPaths {
		for _, protocol := range protocols {
			if n := f.setupRuns[p.Name+"/"+protocol]; n != o.Sessions {
				t.Errorf("setup of %s over %s: %d sessions, want %d", p.Name, protocol, n, o.Sessions)
			}
		}
	}
	// The relay's CPU is 2 s/GiB and exec-proxy's 2.2: 1.1× on every round, under SPDY's 1.15×.
	var cpu int
	for _, x := range res.Ratios {
		if x.Name != "exec-proxy CPU/GiB ÷ TLS relay CPU/GiB" {
			continue
		}
		cpu++
		if len(x.Rounds) != o.Rounds || x.Paired.Low < 1.0999 || x.Paired.High > 1.1001 {
			t.Errorf("%s %s %s: rounds %v, paired %+v", x.Of, x.Protocol, x.Direction, x.Rounds, x.Paired)
		}
		if x.Verdict != Met {
			t.Errorf("%s %s %s: %s, want met", x.Of, x.Protocol, x.Direction, x.Verdict)
		}
		if x.Protocol == "websocket" && x.Direction == "upload" && !strings.Contains(x.Note, "SPDY") {
			t.Errorf("the WebSocket upload's ratio does not say the relay's side is SPDY: %q", x.Note)
		}
	}
	if cpu != len(configs)*4 {
		t.Errorf("%d CPU ratios, want %d", cpu, len(configs)*4)
	}

	// The JSON keeps every round's figures, and the table and the chart's data name the goals.
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var shape struct {
		Transfers []map[string]any `json:"transfers"`
		Ratios    []map[string]any `json:"ratios"`
		Figures   []map[string]any `json:"figures"`
		Setup     []map[string]any `json:"setup"`
	}
	if err := json.Unmarshal(data, &shape); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"round", "path", "protocol", "direction", "mibPerSec", "cpuSecondsPerGiB", "machineBusy"} {
		if _, ok := shape.Transfers[0][k]; !ok {
			t.Errorf("a transfer has no %q: %v", k, shape.Transfers[0])
		}
	}
	for _, k := range []string{"rounds", "paired", "ratioOfMedians", "goal", "verdict"} {
		if _, ok := shape.Ratios[0][k]; !ok {
			t.Errorf("a ratio has no %q: %v", k, shape.Ratios[0])
		}
	}
	if len(shape.Figures) != perRound || len(shape.Setup) != 10 {
		t.Errorf("%d figures, %d setup rows; want %d and 10", len(shape.Figures), len(shape.Setup), perRound)
	}
	var table bytes.Buffer
	WriteTable(&table, res)
	for _, want := range []string{"≤ 1.15×", "≥ 0.93×", "≥ 0.90×", "met", "TLS relay", "setup"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("no %q in the table:\n%s", want, table.String())
		}
	}
	script := chartScript(res, "r.dat", "r.png", "machine")
	for _, goal := range []string{"first 0.93", "first 0.90", "first 1.15", "first 1.50"} {
		if !strings.Contains(script, goal) {
			t.Errorf("the chart draws no goal line at %s:\n%s", goal, script)
		}
	}
	if dat := chartData(res); strings.Contains(dat, " - - -") || strings.Count(dat, "\n\n\n") != len(panels) {
		t.Errorf("chart data misses ratios:\n%s", dat)
	}
}
