package app

import "testing"

func TestSetGCPercent(t *testing.T) {
	tests := []struct {
		name        string
		gogc        string
		wantSet     int // 0: left to the runtime
		wantPercent string
		wantSource  string
	}{
		{name: "GOGC unset: exec-proxy's default", wantSet: defaultGCPercent, wantPercent: "50", wantSource: "default"},
		{name: "GOGC set: the runtime applied it", gogc: "200", wantPercent: "200", wantSource: "GOGC"},
		{name: "GOGC=off is the operator's", gogc: "off", wantPercent: "off", wantSource: "GOGC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := 0
			getenv := func(k string) string {
				if k == "GOGC" {
					return tt.gogc
				}
				return ""
			}
			percent, source := setGCPercent(getenv, func(p int) int { set = p; return 100 })
			if set != tt.wantSet || percent != tt.wantPercent || source != tt.wantSource {
				t.Errorf("set %d, reported %q from %q; want set %d, %q from %q", set, percent, source, tt.wantSet, tt.wantPercent, tt.wantSource)
			}
		})
	}
}
