package proxy

import (
	"os"
	"testing"

	"k8s.io/component-base/metrics/testutil"

	"github.com/exec-proxy/exec-proxy/pkg/proxy/caps"
)

// TestMain registers the metrics before any test runs, as exec-proxy does before it serves: an
// unregistered metric drops what is counted, and registering one while a session of an earlier
// test still updates it is a data race.
func TestMain(m *testing.M) {
	RegisterMetrics()
	os.Exit(m.Run())
}

func TestSessionCapsMetric(t *testing.T) {
	cases := []struct {
		name string
		caps caps.Caps
		want map[string]float64
	}{
		{"none", caps.Caps{}, map[string]float64{"max-sessions": 0, "max-sessions-per-user": 0, "max-sessions-per-node": 0}},
		{"each its own", caps.Caps{MaxSessions: 100, MaxSessionsPerUser: 5, MaxSessionsPerNode: 20, SessionStartQPS: 3},
			map[string]float64{"max-sessions": 100, "max-sessions-per-user": 5, "max-sessions-per-node": 20}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setCapsMetric(tc.caps)
			for capName, want := range tc.want {
				got, err := testutil.GetGaugeMetricValue(sessionCaps.WithLabelValues(capName))
				if err != nil || got != want {
					t.Errorf("session_caps{cap=%q} = %v (%v), want %v", capName, got, err, want)
				}
			}
		})
	}
}
