package idle

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

func TestPingMicros(t *testing.T) {
	for _, c := range []struct {
		name         string
		share, empty float64
		reached      int
		want         float64
	}{
		// 10,000 sessions ping 2,000 times a second; 24% of a core is 120 µs a ping.
		{"kubectl's pings", 0.24, 0, 10000, 120},
		{"half the sessions, same share", 0.24, 0, 5000, 240},
		{"what the process spends anyway is not the pings'", 0.26, 0.02, 10000, 120},
		{"none held", 0.1, 0, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := pingMicros(c.share, c.empty, c.reached); !near(got, c.want) {
				t.Errorf("pingMicros(%v, %v, %d) = %v, want %v", c.share, c.empty, c.reached, got, c.want)
			}
		})
	}
}

// The ratio is per held session and paired by run: a baseline that held fewer sessions is not
// credited for it, and a run without a baseline adds nothing to its figures.
func TestCompare(t *testing.T) {
	run := func(share float64, reached int, baselines ...BaselineRun) Run {
		return Run{Reached: reached, Quiet: Quiet{CoreShare: share}, Baselines: baselines}
	}
	relay := func(share float64, reached int) BaselineRun {
		return BaselineRun{Name: "TLS relay", CoreShare: share, Reached: reached}
	}
	apiserver := BaselineRun{Name: "kube-apiserver", CoreShare: 0.32, EmptyCoreShare: 0.02, Reached: 1000}
	got := compare([]Run{
		run(0.2, 1000, relay(0.1, 1000), apiserver),
		run(0.2, 1000, apiserver, relay(0.05, 500)), // half the sessions for half the CPU: the same per session
		run(0.2, 1000),
	})
	if len(got) != 2 || got[0].Name != "TLS relay" || got[1].Name != "kube-apiserver" {
		t.Fatalf("compare = %+v, want the relay then kube-apiserver", got)
	}
	if r := got[0]; r.Runs != 2 || !near(r.Ratio.Median, 2) || !near(r.Ratio.Low, 2) || !near(r.PingMicros.Median, 500) || r.Reached.Min != 500 {
		t.Errorf("relay = %+v, want 2 runs, ratio 2×, 500 µs a ping", r)
	}
	if a := got[1]; a.Runs != 2 || !near(a.Ratio.Median, 2.0/3) || !near(a.CoreShare.Median, 0.32) {
		t.Errorf("kube-apiserver = %+v, want ratio 0.67×", a)
	}
	if got := compare([]Run{run(0.2, 1000)}); len(got) != 0 {
		t.Errorf("compare without baselines = %+v", got)
	}
}

// holdBaseline holds the sessions on the path, reads the CPU of its process across the window,
// and closes them.
func TestHoldBaseline(t *testing.T) {
	srv := httptest.NewServer(fakePortForward())
	defer srv.Close()
	var reads atomic.Int32
	cpu := []float64{2.9, 3.0, 3.0, 3.5} // empty window, then held
	b := Baseline{Name: "fake", PortForward: srv.URL + "/portForward/demo/demo", Config: &rest.Config{Host: srv.URL},
		CPUSeconds: func() (float64, error) { return cpu[min(int(reads.Add(1))-1, 3)], nil }}
	o := Options{Sessions: 4, Quiet: 500 * time.Millisecond, EmptyWindow: 200 * time.Millisecond, Logf: t.Logf}
	got, err := holdBaseline(context.Background(), o, b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Reached != 4 || got.FirstError != "" || !near(got.CPUSeconds, 0.5) || got.Seconds < 0.5 || !near(got.CoreShare, got.CPUSeconds/got.Seconds) ||
		got.EmptyCoreShare <= 0 || got.EmptyCoreShare > 0.5 { // 0.1 CPU s over at least 0.2 s

		t.Errorf("holdBaseline = %+v, want 4 held and 0.5 CPU s over the window", got)
	}
}

func TestWriteTableCompared(t *testing.T) {
	runs := []Run{
		{Asked: 100, Reached: 100, Quiet: Quiet{Seconds: 150, CoreShare: 0.24}, Usable: Usable{Checked: 100, Usable: 100},
			Baselines: []BaselineRun{{Name: "TLS relay", Reached: 100, CoreShare: 0.12}, {Name: "kube-apiserver", Reached: 100, CoreShare: 0.03, EmptyCoreShare: 0.02}}},
	}
	var buf bytes.Buffer
	WriteTable(&buf, summarize(runs))
	for _, want := range []string{"µs per ping round trip", "TLS relay", "12.00 [12.00, 12.00]", "2.00× [2.00×, 2.00×]", "2.00 [2.00, 2.00]", "24.00× [24.00×, 24.00×]",
		"TLS relay takes 12.00% of a core or more to relay the same sessions' pings"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
	if strings.Contains(buf.String(), "kube-apiserver takes") {
		t.Errorf("a baseline whose pings cost under the goal (3%% held, 2%% with none) is said to be over it:\n%s", buf.String())
	}
}
