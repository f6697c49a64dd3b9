package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exec-proxy/exec-proxy/bench/apf"
	"github.com/exec-proxy/exec-proxy/bench/concurrent"
	"github.com/exec-proxy/exec-proxy/bench/idle"
	"github.com/exec-proxy/exec-proxy/bench/keystroke"
	"github.com/exec-proxy/exec-proxy/bench/setup"
	"github.com/exec-proxy/exec-proxy/bench/throughput"
)

// The table shows the parts measured, and only them: -parts leaves the others out.
func TestWriteTableParts(t *testing.T) {
	rates := Results{Throughput: &throughput.Result{Configs: []throughput.Config{{Name: "GOGC unset"}}}}
	cases := []struct {
		name      string
		r         Results
		want, not []string
	}{
		{"throughput", rates, []string{"THROUGHPUT", "SETUP"}, []string{"Idle sessions", "Throttle:"}},
		{"idle", Results{Idle: &idle.Result{Runs: 3, Run: idle.Run{Asked: 10}}}, []string{"Idle sessions", "3 runs"}, []string{"THROUGHPUT", "Throttle:", "HELD", "concurrent downloads"}},
		{"concurrent", Results{Concurrent: &concurrent.Result{Sessions: 64, Rounds: 10}}, []string{"64 concurrent downloads"}, []string{"THROUGHPUT", "Throttle:", "Idle sessions"}},
		{"throttle", Results{Throttle: Throttle{Starts: 40, Burst: 10}}, []string{"Throttle:", "burst 10"}, []string{"THROUGHPUT", "Idle sessions"}},
		{"apf", Results{APF: &apf.Result{Sessions: 200, Reads: []apf.Read{{Path: "route", Measure: "kubectl.1.33 get pods (process)"}}}},
			[]string{"200 HELD", "kubectl.1.33 get pods (process)  route", "0 seats executing and 0 requests in queue with the sessions held"}, []string{"THROUGHPUT", "Idle sessions", "Throttle:"}},
		{"setup", Results{PortForwardSetup: &setup.Result{Port: setup.Port, Sessions: 100, Rounds: 10, Cases: []setup.Case{{Path: setup.RouteOn, P50: 8}}}},
			[]string{"Port-forward setup", "route, webhook on  8.00", "Audit webhook:"}, []string{"THROUGHPUT", "Idle sessions", "Throttle:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			writeTable(&buf, &tc.r)
			for _, w := range tc.want {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("no %q in\n%s", w, buf.String())
				}
			}
			for _, n := range tc.not {
				if strings.Contains(buf.String(), n) {
					t.Errorf("%q, not measured, in\n%s", n, buf.String())
				}
			}
		})
	}
}

// merge keeps each run's parts, a later run's replacing an earlier's, and no empty part over one
// measured.
func TestMerge(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, r Results) string {
		data, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	a := write("a.json", Results{Date: "a", Throttle: Throttle{Starts: 40, Burst: 10}, Keystroke: &keystroke.Result{Echoes: 300}})
	b := write("b.json", Results{Date: "b", Concurrent: &concurrent.Result{Sessions: 64}})
	c := write("c.json", Results{Date: "c", Keystroke: &keystroke.Result{Echoes: 100}})
	r, err := merge([]string{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	if r.Date != "c" || r.Throttle.Starts != 40 || r.Concurrent == nil || r.Concurrent.Sessions != 64 || r.Keystroke == nil || r.Keystroke.Echoes != 100 {
		t.Errorf("merged: %+v", r)
	}
	if _, err := merge([]string{a, filepath.Join(dir, "missing.json")}); err == nil {
		t.Error("a missing file merged")
	}
}
