package apf

import (
	"reflect"
	"testing"
)

// What kube-apiserver's and exec-proxy's /metrics look like, cut down.
const metricsText = `# HELP apiserver_flowcontrol_current_executing_seats [BETA] Concurrency (number of seats) occupied by the currently executing (initial stage for a WATCH, any stage otherwise) requests in the API Priority and Fairness subsystem
# TYPE apiserver_flowcontrol_current_executing_seats gauge
apiserver_flowcontrol_current_executing_seats{flow_schema="global-default",priority_level="global-default"} 2
apiserver_flowcontrol_current_executing_seats{flow_schema="service-accounts",priority_level="workload-low"} 1
apiserver_flowcontrol_current_executing_seats{flow_schema="kube-controller-manager",priority_level="workload-high"} 3
apiserver_flowcontrol_current_executing_seats{flow_schema="global-default",priority_level="global-default"} 1
apiserver_flowcontrol_current_executing_seats_total{priority_level="global-default"} 100
apiserver_flowcontrol_current_inqueue_requests{flow_schema="a,b",priority_level="workload-low"} 4
apiserver_flowcontrol_current_inqueue_requests{flow_schema="say \"hi\"",priority_level="global-default"} 0.5
execproxy_sessions_active 200
execproxy_sessions_active_max 9
`

func TestSumByLabel(t *testing.T) {
	for _, c := range []struct {
		name, metric, label string
		want                map[string]float64
	}{
		{"seats by level, summed over schemas; a longer name left out", "apiserver_flowcontrol_current_executing_seats", "priority_level",
			map[string]float64{"global-default": 3, "workload-low": 1, "workload-high": 3}},
		{"quotes and commas in other labels", "apiserver_flowcontrol_current_inqueue_requests", "priority_level",
			map[string]float64{"workload-low": 4, "global-default": 0.5}},
		{"no labels", "execproxy_sessions_active", "", map[string]float64{"": 200}},
		{"absent", "execproxy_sessions_total", "", map[string]float64{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := sumByLabel(metricsText, c.metric, c.label); !reflect.DeepEqual(got, c.want) {
				t.Errorf("sumByLabel(%s, %q) = %v, want %v", c.metric, c.label, got, c.want)
			}
		})
	}
}

func TestParseLabels(t *testing.T) {
	for _, c := range []struct {
		in   string
		want map[string]string
	}{
		{`a="x",b="y"`, map[string]string{"a": "x", "b": "y"}},
		{`a="x,y",b="say \"hi\""`, map[string]string{"a": "x,y", "b": `say "hi"`}},
		{`a=""`, map[string]string{"a": ""}},
		{``, map[string]string{}},
	} {
		if got := parseLabels(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseLabels(%s) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestPairedReads(t *testing.T) {
	for _, c := range []struct {
		name           string
		held, notHeld  [][]float64
		wantHeld, want Latency
		added          float64
	}{
		{"each held batch 10 ms slower", [][]float64{{20, 21, 22}, {30, 31, 32}}, [][]float64{{10, 11, 12}, {20, 21, 22}},
			Latency{P50: 22, P99: 32, Count: 6}, Latency{P50: 12, P99: 22, Count: 6}, 10},
		// The pooled percentiles differ, the pairs do not: the drift between pairs is not the sessions'.
		{"drift between pairs only", [][]float64{{10}, {50}, {90}}, [][]float64{{10}, {50}, {90}},
			Latency{P50: 50, P99: 90, Count: 3}, Latency{P50: 50, P99: 90, Count: 3}, 0},
		{"a batch with no read left out of the pairs", [][]float64{{15}, {}}, [][]float64{{10}, {99}},
			Latency{P50: 15, P99: 15, Count: 1}, Latency{P50: 10, P99: 99, Count: 2}, 5},
		{"none", nil, nil, Latency{}, Latency{}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			held, notHeld, added := pairedReads(c.held, c.notHeld)
			if held != c.wantHeld || notHeld != c.want || added.Median != c.added {
				t.Errorf("pairedReads = %+v, %+v, added %+v; want %+v, %+v, added %v", held, notHeld, added, c.wantHeld, c.want, c.added)
			}
			if added.Low > added.Median || added.High < added.Median {
				t.Errorf("added %+v: the interval does not hold the median", added)
			}
		})
	}
}

func TestFlowControlAdd(t *testing.T) {
	var f FlowControl
	for _, s := range []FlowControl{{ExecutingSeats: 1, Samples: 1}, {InQueue: 2, Samples: 1}, {ExecutingSeats: 0, Samples: 1}} {
		f.add(s)
	}
	if want := (FlowControl{ExecutingSeats: 1, InQueue: 2, Samples: 3}); f != want {
		t.Errorf("%+v, want %+v", f, want)
	}
}
