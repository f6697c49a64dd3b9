package recording

import (
	"sync"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

const namespace = "execproxy"

var (
	uploadsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Name: "recording_uploads_total",
		Help: "Objects uploaded to the recording bucket, by object (part: of a running session; recording: a whole one; " +
			"check: the start's check of the bucket) and result (success, failure).", StabilityLevel: metrics.ALPHA,
	}, []string{"object", "result"})
	uploadDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: namespace, Name: "recording_upload_duration_seconds",
		Help: "Time an upload to the recording bucket took, by object and result: a part's adds to what a replica's loss " +
			"loses of a running session.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}, StabilityLevel: metrics.ALPHA,
	}, []string{"object", "result"})
	retentionRemoved = metrics.NewCounter(&metrics.CounterOpts{
		Namespace: namespace, Name: "recording_retention_removed_total",
		Help: "Objects removed from the recording bucket for being older than --recording-retention.", StabilityLevel: metrics.ALPHA,
	})

	registerOnce sync.Once
)

// RegisterMetrics adds the recording bucket's metrics to the legacy registry served on /metrics.
func RegisterMetrics() {
	registerOnce.Do(func() { legacyregistry.MustRegister(uploadsTotal, uploadDuration, retentionRemoved) })
}

func observeUpload(object string, err error, took time.Duration) {
	result := "success"
	if err != nil {
		result = "failure"
	}
	uploadsTotal.WithLabelValues(object, result).Inc()
	uploadDuration.WithLabelValues(object, result).Observe(took.Seconds())
}
