package idle

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	spdyserver "k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

// fakePortForward is a port-forward server whose pod serves HTTP on port 8080 and nothing else:
// a stream pair for another port gets the kubelet's error on its error stream.
func fakePortForward() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if _, err := httpstream.Handshake(req, w, []string{portforward.PortForwardProtocolV1Name}); err != nil {
			return
		}
		streams := make(chan httpstream.Stream, 16)
		conn := spdyserver.NewResponseUpgrader().UpgradeResponse(w, req, func(s httpstream.Stream, _ <-chan struct{}) error {
			streams <- s
			return nil
		})
		if conn == nil {
			return
		}
		defer conn.Close()
		for {
			select {
			case s := <-streams:
				go serveStream(s)
			case <-conn.CloseChan():
				return
			}
		}
	})
}

func serveStream(s httpstream.Stream) {
	defer s.Close()
	open := s.Headers().Get(v1.PortHeader) == "8080"
	switch s.Headers().Get(v1.StreamType) {
	case v1.StreamTypeError:
		if !open {
			_, _ = io.WriteString(s, "dial tcp4 127.0.0.1:"+s.Headers().Get(v1.PortHeader)+": connect: connection refused")
		}
	case v1.StreamTypeData:
		if !open {
			return
		}
		r := bufio.NewReader(s)
		for line, err := r.ReadString('\n'); err == nil && line != "\r\n"; line, err = r.ReadString('\n') {
		}
		_, _ = io.WriteString(s, "HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n")
	}
}

func TestUsable(t *testing.T) {
	srv := httptest.NewServer(fakePortForward())
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/api/v1/namespaces/demo/pods/demo/portforward")
	for _, c := range []struct {
		name       string
		port       int
		closed     int // connections the client closes before the probe: sessions that no longer work
		wantUsable int
		wantError  string
	}{
		{"all usable", 8080, 0, 5, ""},
		{"one session gone", 8080, 1, 4, ""},
		{"a port the pod does not serve", 9, 0, 0, "connection refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conns, err := dialAll(context.Background(), &rest.Config{Host: srv.URL}, u, 5, 2, 10*time.Second)
			if err != nil || len(conns) != 5 {
				t.Fatalf("dialAll: %d connections, %v", len(conns), err)
			}
			defer func() {
				for _, conn := range conns {
					_ = conn.Close()
				}
			}()
			for _, conn := range conns[:c.closed] {
				_ = conn.Close()
			}
			got := probeAll(conns, c.port, 3, 10*time.Second, time.Minute)
			if got.Checked != 5 || got.Usable != c.wantUsable {
				t.Errorf("probeAll = %d usable of %d checked, want %d of 5 (first error %q)", got.Usable, got.Checked, c.wantUsable, got.FirstError)
			}
			if !strings.Contains(got.FirstError, c.wantError) || (c.wantError == "" && c.closed == 0 && got.FirstError != "") {
				t.Errorf("first error %q, want one with %q", got.FirstError, c.wantError)
			}
			// A probed session stays open and serves again.
			if c.wantUsable > 0 {
				if err := probe(conns[len(conns)-1], c.port, 10*time.Second); err != nil {
					t.Errorf("a second probe on the same session: %v", err)
				}
			}
		})
	}
}

// Past its budget, probeAll leaves the rest unchecked, and says so.
func TestProbeAllBudget(t *testing.T) {
	srv := httptest.NewServer(fakePortForward())
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/portforward")
	conns, err := dialAll(context.Background(), &rest.Config{Host: srv.URL}, u, 3, 3, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	got := probeAll(conns, 8080, 1, 10*time.Second, -time.Second)
	if got.Checked != 0 || got.Usable != 0 || !strings.Contains(got.FirstError, "3 sessions left unchecked") {
		t.Errorf("probeAll with no budget = %+v, want none checked and the reason", got)
	}
}

// A server that accepts nothing (out of file descriptors) fails the dial after its timeout rather
// than holding it.
func TestDialAllGivesUp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	u, _ := url.Parse("http://" + l.Addr().String() + "/portforward")
	conns, err := dialAll(context.Background(), &rest.Config{Host: "http://" + l.Addr().String()}, u, 3, 3, 100*time.Millisecond)
	if len(conns) != 0 || err == nil || !strings.Contains(err.Error(), "no connection") {
		t.Errorf("dialAll = %d connections, %v; want none and a timeout", len(conns), err)
	}
}

func TestQuietFigures(t *testing.T) {
	before := map[string]float64{gcCPUMetric: 10, lastGCMetric: 1000, gcCyclesMetric: 7}
	for _, c := range []struct {
		name  string
		m1    map[string]float64
		cpu   float64
		want  Quiet
		shown bool
	}{
		{"a forced collection in the window", map[string]float64{gcCPUMetric: 10.6, lastGCMetric: 1120, gcCyclesMetric: 8}, 1.2,
			Quiet{Seconds: 150, CPUSeconds: 1.2, CoreShare: 0.008, GCCPUSeconds: 0.6, GCSpanSeconds: 120, GCCycles: 1, GCCoreShare: 0.005}, true},
		{"no collection ended", map[string]float64{gcCPUMetric: 10, lastGCMetric: 1000, gcCyclesMetric: 7}, 1.5,
			Quiet{Seconds: 150, CPUSeconds: 1.5, CoreShare: 0.01}, false},
		{"no GC figure on /metrics", map[string]float64{lastGCMetric: 1120, gcCyclesMetric: 8}, 1.5,
			Quiet{Seconds: 150, CPUSeconds: 1.5, CoreShare: 0.01, GCMissing: gcCPUMetric}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := quietFigures(150, c.cpu, before, c.m1)
			if !near(got.CoreShare, c.want.CoreShare) || !near(got.GCCoreShare, c.want.GCCoreShare) || !near(got.GCCPUSeconds, c.want.GCCPUSeconds) ||
				got.GCCycles != c.want.GCCycles || got.GCSpanSeconds != c.want.GCSpanSeconds || got.GCMissing != c.want.GCMissing {
				t.Errorf("quietFigures = %+v, want %+v", got, c.want)
			}
		})
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestSummarizeVerdicts(t *testing.T) {
	run := func(core, gc float64, cycles, usable int) Run {
		return Run{Asked: 100, Reached: 100, Quiet: Quiet{CoreShare: core, GCCoreShare: gc, GCCycles: cycles}, Usable: Usable{Checked: 100, Usable: usable}}
	}
	for _, c := range []struct {
		name            string
		runs            []Run
		cpu, gc, usable string
	}{
		{"all met", []Run{run(0.01, 0.004, 1, 100), run(0.012, 0.005, 1, 100), run(0.011, 0.006, 2, 100)}, stats.Met, stats.Met, stats.Met},
		{"one run over the CPU goal, one session unusable", []Run{run(0.01, 0.004, 1, 100), run(0.025, 0.005, 1, 99), run(0.011, 0.006, 1, 100)}, stats.NotShown, stats.Met, stats.NotMet},
		{"every run over the CPU goal", []Run{run(0.03, 0.004, 1, 100), run(0.025, 0.005, 1, 100), run(0.021, 0.006, 1, 100)}, stats.NotMet, stats.Met, stats.Met},
		{"a window without a collection", []Run{run(0.01, 0.004, 1, 100), run(0.01, 0, 0, 100), run(0.011, 0.006, 1, 100)}, stats.Met, stats.NotShown, stats.Met},
		{"no collection at all", []Run{run(0.01, 0, 0, 100)}, stats.Met, stats.NotShown, stats.Met},
		{"no runs", nil, stats.NotShown, stats.NotShown, stats.NotShown},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := summarize(c.runs)
			if r.CPUVerdict != c.cpu || r.GCVerdict != c.gc || r.UsableVerdict != c.usable {
				t.Errorf("verdicts CPU %q, GC %q, usable %q; want %q, %q, %q", r.CPUVerdict, r.GCVerdict, r.UsableVerdict, c.cpu, c.gc, c.usable)
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	limits := Limits{Bench: 20000, Processes: map[string]Files{"exec-proxy": {Limit: 20000, Open: 20000}, "kubelet-node1": {Limit: 20000, Open: 15000}}}
	r := summarize([]Run{
		{Asked: 10000, Reached: 10000, Quiet: Quiet{Seconds: 150, CoreShare: 0.012, GCCoreShare: 0.004, GCCycles: 1}, Usable: Usable{Checked: 10000, Usable: 10000}, Limits: limits},
		{Asked: 10000, Reached: 9990, Quiet: Quiet{Seconds: 150, CoreShare: 0.013}, Usable: Usable{Checked: 9990, Usable: 9990, FirstError: "EOF"}, Limits: limits},
	})
	var buf bytes.Buffer
	WriteTable(&buf, r)
	for _, want := range []string{"CPU 1.20% of a core", "goal < 2.00%: met", "GC 0.40%", "1 of 2 runs' windows", "goal < 1.00%: not shown",
		"10000 of 10000, 9990 of 10000", "goal all: not met", "(first error: EOF)", "exec-proxy was at its open-file limit", "exec-proxy 20000 open of 20000; kubelet-node1 15000 open of 20000"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}

// At its open-file limit with every session reached and usable, no process is blamed for sessions
// that were all there.
func TestWriteTableAtLimitAllUsable(t *testing.T) {
	limits := Limits{Bench: 20000, Processes: map[string]Files{"exec-proxy": {Limit: 20000, Open: 19815}}}
	r := summarize([]Run{{Asked: 9900, Reached: 9900, Quiet: Quiet{Seconds: 150, CoreShare: 0.2}, Usable: Usable{Checked: 9900, Usable: 9900}, Limits: limits}})
	var buf bytes.Buffer
	WriteTable(&buf, r)
	if strings.Contains(buf.String(), "at its open-file limit") || !strings.Contains(buf.String(), "exec-proxy 19815 open of 20000") {
		t.Errorf("table:\n%s", buf.String())
	}
}

// The figures the GC share stands on are on the registry exec-proxy serves on /metrics (component-
// base's legacy registry, which registers Go's collector with every runtime/metrics figure).
func TestRegistryHasGCFigures(t *testing.T) {
	srv := httptest.NewServer(legacyregistry.Handler())
	defer srv.Close()
	get := func(path string, _ time.Duration) ([]byte, error) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	}
	m, err := goMetrics(get)
	if err != nil {
		t.Fatal(err)
	}
	if q := quietFigures(1, 0, m, m); q.GCMissing != "" {
		t.Errorf("the legacy registry lacks %s", q.GCMissing)
	}
}
