package proxy

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/exec-proxy/exec-proxy/pkg/proxy/caps"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/kubeletconn"
	"github.com/exec-proxy/exec-proxy/pkg/recording"
)

const namespace = "execproxy"

var (
	sessionsActive = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: namespace, Name: "sessions_active",
		Help: "Sessions currently upgraded and relaying.", StabilityLevel: metrics.ALPHA,
	})
	sessionsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Name: "sessions_total",
		Help: "Session attempts by kind and outcome (upgraded, refused, kubelet_error, throttled).", StabilityLevel: metrics.ALPHA,
	}, []string{"kind", "outcome"})
	sessionBytes = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Name: "session_bytes_total",
		Help: "Bytes relayed on client connections, by direction (in: from client, out: to client).", StabilityLevel: metrics.ALPHA,
	}, []string{"direction"})
	sessionDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: namespace, Name: "session_duration_seconds",
		Help:    "Duration of upgraded sessions by kind.",
		Buckets: []float64{0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600, 14400}, StabilityLevel: metrics.ALPHA,
	}, []string{"kind"})
	throttledTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Name: "throttled_total",
		Help: "Sessions refused by a limit, by the limit's name.", StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	// sessionCaps lets an alert compare sessions_active with the cap before sessions are refused.
	sessionCaps = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: namespace, Name: "session_caps",
		Help: "The flags' caps on concurrent sessions, by cap (max-sessions, max-sessions-per-user, max-sessions-per-node, " +
			"as throttled_total's reason); 0: no cap.", StabilityLevel: metrics.ALPHA,
	}, []string{"cap"})
	recordingsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Name: "recordings_total",
		Help: "Session recordings by result: complete, incomplete (a write or, with a bucket, the whole recording's upload " +
			"failed, or events were dropped) or not_started (the file could not be made).", StabilityLevel: metrics.ALPHA,
	}, []string{"result"})

	registerOnce sync.Once
)

// RegisterMetrics adds exec-proxy's metrics to the legacy registry served on /metrics.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(sessionsActive, sessionsTotal, sessionBytes, sessionDuration, throttledTotal,
			sessionCaps, recordingsTotal)
		kubeletconn.RegisterMetrics()
		recording.RegisterMetrics()
	})
}

// setCapsMetric shows the caps c on /metrics; the throttled reasons name them.
func setCapsMetric(c caps.Caps) {
	for capName, v := range map[string]int{"max-sessions": c.MaxSessions, "max-sessions-per-user": c.MaxSessionsPerUser,
		"max-sessions-per-node": c.MaxSessionsPerNode} {
		sessionCaps.WithLabelValues(capName).Set(float64(v))
	}
}

// recordingResult names what became of a recording, as recordings_total is labelled.
func (r recordingResult) result() string {
	if r.err != "" || r.dropped > 0 {
		return "incomplete"
	}
	return "complete"
}

// sessionCounters are resolved once per process so the relay's hot path only adds.
type sessionCounters struct {
	in, out metrics.CounterMetric
}

var (
	countersOnce sync.Once
	counters     *sessionCounters
)

func byteCounters() *sessionCounters {
	countersOnce.Do(func() {
		counters = &sessionCounters{in: sessionBytes.WithLabelValues("in"), out: sessionBytes.WithLabelValues("out")}
	})
	return counters
}
