package idleexec

import (
	"bytes"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name      string
		cases     []Case
		wantRatio []float64 // the route case's, per round
		wantOfMed float64
	}{
		{
			name: "paired by round, same kubectl only",
			cases: []Case{
				{Kubectl: "kubectl.1.33", Path: "route", ExecProxyKiB: []float64{100, 200}, APIServerKiB: []float64{10, 20}},
				{Kubectl: "kubectl.1.33", Path: "kube-apiserver", APIServerKiB: []float64{110, 440}},
				{Kubectl: "kubectl.1.28", Path: "kube-apiserver", APIServerKiB: []float64{1, 1}},
			},
			wantRatio: []float64{1, 0.5},
			wantOfMed: (100 + 10) / 110.0, // nearest-rank medians of two: the smaller
		},
		{
			name: "a round without a baseline is left out",
			cases: []Case{
				{Kubectl: "kubectl.1.28", Path: "route", ExecProxyKiB: []float64{30, 30}, APIServerKiB: []float64{10, 10}},
				{Kubectl: "kubectl.1.28", Path: "kube-apiserver", APIServerKiB: []float64{0, 20}},
			},
			wantRatio: []float64{2},
			wantOfMed: 0, // the baseline's median is 0: no ratio
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &Result{Cases: tt.cases}
			summarize(res)
			route := res.Cases[0]
			if len(route.VsAPIServerRounds) != len(tt.wantRatio) {
				t.Fatalf("ratios %v, want %v", route.VsAPIServerRounds, tt.wantRatio)
			}
			for i, r := range tt.wantRatio {
				if route.VsAPIServerRounds[i] != r {
					t.Errorf("round %d: ratio %v, want %v", i, route.VsAPIServerRounds[i], r)
				}
			}
			if route.RatioOfMedians != tt.wantOfMed {
				t.Errorf("ratio of medians %v, want %v", route.RatioOfMedians, tt.wantOfMed)
			}
			if res.Cases[1].VsAPIServer != nil {
				t.Error("kube-apiserver's own path has a ratio to itself")
			}
			var buf bytes.Buffer
			WriteTable(&buf, res)
			if !strings.Contains(buf.String(), route.Kubectl) || !strings.Contains(buf.String(), "×") {
				t.Errorf("table:\n%s", buf.String())
			}
		})
	}
}

// pump keeps a session active until stopped: what cat echoes back is counted.
func TestPump(t *testing.T) {
	cmd := exec.Command("cat")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &session{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(counter{&s.echoed}, stdout); close(copied) }()
	stop := make(chan struct{})
	pumped := make(chan struct{})
	go func() { s.pump(stop); close(pumped) }()
	for s.echoed.Load() < 2*activeLine {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	<-pumped
	_ = stdin.Close()
	<-copied
	_ = cmd.Wait()
	if n := s.echoed.Load(); n%activeLine != 0 {
		t.Errorf("echoed %d bytes: not whole lines of %d", n, activeLine)
	}
}
