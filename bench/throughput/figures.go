package throughput

import (
	"sort"

	"github.com/exec-proxy/exec-proxy/bench/internal/execpath"
	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

// Result is every figure of the part, with the transfers of every round it was drawn from.
type Result struct {
	Rounds        int      `json:"rounds"` // after the discarded warm-up
	DownloadBytes int64    `json:"downloadBytes"`
	UploadBytes   int64    `json:"uploadBytes"`
	Configs       []Config `json:"execProxyConfigs"`
	// Policy is the session policy file both configurations ran with: it records one user's
	// sessions, so that recorded and unrecorded sessions share the rounds and the exec-proxy.
	Policy    string           `json:"sessionPolicy"`
	Transfers []Transfer       `json:"transfers"` // every round's, the warm-up's left out
	Figures   []Figure         `json:"figures"`
	Ratios    []Ratio          `json:"ratios"`
	Setup     []execpath.Setup `json:"setup"`
	// Failed lists the transfers that failed and were run once more.
	Failed []string `json:"failedTransfers,omitempty"`
}

// Transfer is one download or upload of one round.
type Transfer struct {
	Round     int     `json:"round"`
	Path      string  `json:"path"`
	Protocol  string  `json:"protocol"`
	Direction string  `json:"direction"` // download (stdout) or upload (stdin)
	MiBps     float64 `json:"mibPerSec"`
	// CPUPerGiB is by process (see Sampler), and Machine and Other.
	CPUPerGiB map[string]float64 `json:"cpuSecondsPerGiB"`
	// MachineBusy is the share of the machine's CPU time that was busy.
	MachineBusy float64 `json:"machineBusy"`
}

// Figure is one path's transfers in one direction over one protocol, over the rounds.
type Figure struct {
	Path        string             `json:"path"`
	Protocol    string             `json:"protocol"`
	Direction   string             `json:"direction"`
	MiBps       stats.Interval     `json:"mibPerSec"`
	CPUPerGiB   map[string]float64 `json:"cpuSecondsPerGiB"` // medians
	MachineBusy float64            `json:"machineBusy"`      // median
}

// Goal is a bound a ratio should keep.
type Goal struct {
	AtMost bool    `json:"atMost"` // else at least
	Value  float64 `json:"value"`
}

// Verdicts: met only when the whole 95% interval clears the goal, not met when none of it does.
const (
	Met      = stats.Met
	NotMet   = stats.NotMet
	NotShown = stats.NotShown
)

// Ratio is a figure of one path over another's, round by round.
type Ratio struct {
	Name      string `json:"name"`
	Of        string `json:"of"`   // path (and process, for CPU)
	Over      string `json:"over"` // path (and process)
	Protocol  string `json:"protocol"`
	Direction string `json:"direction"`
	// Config is exec-proxy's configuration, for the route's ratios at one.
	Config string `json:"execProxyConfig,omitempty"`
	// Note says where the two sides differ from what Name says (another protocol, say).
	Note      string         `json:"note,omitempty"`
	Rounds    []float64      `json:"rounds"` // each round's ratio, in round order
	Paired    stats.Interval `json:"paired"` // their median and its 95% bootstrap interval
	OfMedians float64        `json:"ratioOfMedians"`
	Goal      *Goal          `json:"goal,omitempty"`
	Verdict   string         `json:"verdict,omitempty"`
}

// side is what a ratio takes from one path's transfers.
type side struct {
	path, protocol string // protocol "": the ratio's own
	process        string // "": the rate; else that process's CPU s/GiB
}

func (s side) value(t Transfer) float64 {
	if s.process == "" {
		return t.MiBps
	}
	return t.CPUPerGiB[s.process]
}

func (s side) String() string {
	if s.process == "" {
		return s.path
	}
	return s.path + " (" + s.process + " CPU/GiB)"
}

const resamples = 10000

// byRound is s's figure of each round's transfer in protocol (unless s names its own) and direction.
func (s side) byRound(ts []Transfer, protocol, direction string) map[int]float64 {
	if s.protocol != "" {
		protocol = s.protocol
	}
	out := map[int]float64{}
	for _, t := range ts {
		if t.Path == s.path && t.Protocol == protocol && t.Direction == direction {
			out[t.Round] = s.value(t)
		}
	}
	return out
}

// ratio pairs of's and over's transfers of each round.
func ratio(ts []Transfer, name, protocol, direction string, of, over side, goal *Goal, note string) Ratio {
	byRound := map[side]map[int]float64{of: of.byRound(ts, protocol, direction), over: over.byRound(ts, protocol, direction)}
	r := Ratio{Name: name, Of: of.String(), Over: over.String(), Protocol: protocol, Direction: direction, Note: note, Goal: goal}
	var ofs, overs []float64
	rounds := make([]int, 0, len(byRound[of]))
	for round := range byRound[of] {
		rounds = append(rounds, round)
	}
	sort.Ints(rounds)
	for _, round := range rounds {
		a, b := byRound[of][round], byRound[over][round]
		if _, ok := byRound[over][round]; !ok || b == 0 {
			continue
		}
		r.Rounds = append(r.Rounds, a/b)
		ofs, overs = append(ofs, a), append(overs, b)
	}
	r.Paired = stats.BootstrapMedian(r.Rounds, resamples)
	if m := stats.Summarize(overs).Median; m != 0 {
		r.OfMedians = stats.Summarize(ofs).Median / m
	}
	if goal != nil {
		r.Verdict = stats.Verdict(r.Paired, len(r.Rounds), goal.Value, !goal.AtMost)
	}
	return r
}

// Names of the paths.
const (
	Direct    = "direct kubelet"
	Relay     = "TLS relay"
	APIServer = "kube-apiserver"
	Route     = "exec-proxy"
	Recorded  = "exec-proxy + recording"
)

// Issue 28's goals.
var (
	goalVsAPIServer = &Goal{Value: 0.93} // SPDY route ÷ kube-apiserver's path
	goalRecorded    = &Goal{Value: 0.9}  // recorded ÷ unrecorded
	goalCPU         = map[string]*Goal{"spdy": {AtMost: true, Value: 1.15}, "websocket": {AtMost: true, Value: 1.5}}
)

// noUpload: the kubelet speaks WebSocket v4 only, which cannot close stdin alone.
func noUpload(path, protocol string) bool {
	return (path == Direct || path == Relay) && protocol == "websocket"
}

// Resummarize computes res's figures and ratios again from its transfers, its paths in the order of
// its figures: a report of transfers measured before a ratio was added shows it too.
func Resummarize(res *Result) {
	var paths []string
	seen := map[string]bool{}
	for _, f := range res.Figures {
		if !seen[f.Path] {
			seen[f.Path] = true
			paths = append(paths, f.Path)
		}
	}
	res.Figures, res.Ratios = nil, nil
	summarize(res, paths)
}

// summarize fills res's figures and ratios from its transfers; paths are in the table's order.
func summarize(res *Result, paths []string) {
	for _, protocol := range protocols {
		for _, p := range paths {
			for _, dir := range directions {
				if noUpload(p, protocol) && dir == "upload" {
					continue
				}
				res.Figures = append(res.Figures, figure(res.Transfers, p, protocol, dir))
			}
		}
	}
	config := ""
	add := func(name string, of, over side, goal func(protocol string) *Goal) {
		for _, protocol := range protocols {
			for _, dir := range directions {
				x := ratio(res.Transfers, name, protocol, dir, of, over, goal(protocol), "")
				x.Config = config
				res.Ratios = append(res.Ratios, x)
			}
		}
	}
	none := func(string) *Goal { return nil }
	for _, cfg := range configs {
		config = cfg.Name
		route, recorded := Route+cfg.Suffix, Recorded+cfg.Suffix
		add("throughput ÷ kube-apiserver's path", side{path: route}, side{path: APIServer}, func(protocol string) *Goal {
			if protocol == "spdy" {
				return goalVsAPIServer
			}
			return nil
		})
		add("recorded ÷ unrecorded throughput", side{path: recorded}, side{path: route}, func(string) *Goal { return goalRecorded })
		for _, dir := range directions {
			for _, protocol := range protocols {
				over, note := side{path: Relay, process: "tls relay"}, ""
				if noUpload(Relay, protocol) && dir == "upload" {
					over.protocol, note = "spdy", "the relay's SPDY upload: a WebSocket v4 client cannot end stdin"
				}
				x := ratio(res.Transfers, "exec-proxy CPU/GiB ÷ TLS relay CPU/GiB", protocol, dir,
					side{path: route, process: "exec-proxy"}, over, goalCPU[protocol], note)
				x.Config = config
				res.Ratios = append(res.Ratios, x)
			}
		}
		if cfg.Suffix == "" {
			continue
		}
		for _, p := range []string{Route, Recorded} {
			add("throughput at "+cfg.Name+" ÷ exec-proxy's default", side{path: p + cfg.Suffix}, side{path: p}, none)
			add("exec-proxy CPU/GiB at "+cfg.Name+" ÷ exec-proxy's default", side{path: p + cfg.Suffix, process: "exec-proxy"}, side{path: p, process: "exec-proxy"}, none)
		}
	}
	config = ""
	for _, p := range []string{Direct, Relay, Recorded} {
		add("throughput ÷ kube-apiserver's path", side{path: p}, side{path: APIServer}, none)
	}
	add("one bare TLS hop: throughput ÷ the direct kubelet's", side{path: Relay}, side{path: Direct}, none)
	for _, dir := range directions {
		res.Ratios = append(res.Ratios, hopRatio(res.Transfers, "spdy", dir))
	}
}

// hopRatio is, round by round, the route's throughput ÷ kube-apiserver's path's over the bare TLS
// relay's ÷ the direct kubelet's: the share of a transfer's throughput kept across exec-proxy's hop
// (a second hop, after kube-apiserver) against the share kept across one bare TLS hop (a first,
// after the client) on the same machine in the same round; at least 1: exec-proxy's hop loses no
// more than a bare one. SPDY only: over WebSocket the route translates and the relay passes the
// kubelet's frames.
func hopRatio(ts []Transfer, protocol, direction string) Ratio {
	rate := map[string]map[int]float64{}
	for _, p := range []string{Route, APIServer, Relay, Direct} {
		rate[p] = side{path: p}.byRound(ts, protocol, direction)
	}
	r := Ratio{Name: "throughput kept across exec-proxy's hop ÷ across a bare TLS hop", Of: "(" + Route + " ÷ " + APIServer + ")",
		Over: "(" + Relay + " ÷ " + Direct + ")", Protocol: protocol, Direction: direction}
	rounds := make([]int, 0, len(rate[Route]))
	for round := range rate[Route] {
		rounds = append(rounds, round)
	}
	sort.Ints(rounds)
	var route, api, relay, direct []float64
	for _, round := range rounds {
		a, b, c, d := rate[Route][round], rate[APIServer][round], rate[Relay][round], rate[Direct][round]
		if a == 0 || b == 0 || c == 0 || d == 0 {
			continue // a path missing from the round
		}
		r.Rounds = append(r.Rounds, a/b/(c/d))
		route, api, relay, direct = append(route, a), append(api, b), append(relay, c), append(direct, d)
	}
	r.Paired = stats.BootstrapMedian(r.Rounds, resamples)
	if len(r.Rounds) > 0 {
		m := func(xs []float64) float64 { return stats.Summarize(xs).Median }
		r.OfMedians = m(route) / m(api) / (m(relay) / m(direct))
	}
	return r
}

func figure(ts []Transfer, path, protocol, direction string) Figure {
	f := Figure{Path: path, Protocol: protocol, Direction: direction, CPUPerGiB: map[string]float64{}}
	var rates, busy []float64
	cpu := map[string][]float64{}
	for _, t := range ts {
		if t.Path != path || t.Protocol != protocol || t.Direction != direction {
			continue
		}
		rates, busy = append(rates, t.MiBps), append(busy, t.MachineBusy)
		for k, v := range t.CPUPerGiB {
			cpu[k] = append(cpu[k], v)
		}
	}
	f.MiBps = stats.BootstrapMedian(rates, resamples)
	f.MachineBusy = stats.Summarize(busy).Median
	for k, v := range cpu {
		f.CPUPerGiB[k] = stats.Summarize(v).Median
	}
	return f
}
