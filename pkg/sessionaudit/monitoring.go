package sessionaudit

import (
	compbasemetrics "k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var recordsTotal = compbasemetrics.NewCounterVec(&compbasemetrics.CounterOpts{
	Namespace: "execproxy", Name: "session_audit_records_total",
	Help: "Session audit records by record (start, end, refused) and result (written, lost).",
}, []string{"record", "result"})

var missingTotal = compbasemetrics.NewCounterVec(&compbasemetrics.CounterOpts{
	Namespace: "execproxy", Name: "session_audit_missing_attempts_total",
	Help: "Sessions refused because auditing is on and the request had no audit attempt for them, by kind.",
}, []string{"kind"})

var (
	webhookPending = compbasemetrics.NewGauge(&compbasemetrics.GaugeOpts{
		Namespace: "execproxy", Name: "session_audit_webhook_pending_records",
		Help: "Session audit records accepted for the webhook and not yet delivered.",
	})
	webhookRecords = compbasemetrics.NewCounterVec(&compbasemetrics.CounterOpts{
		Namespace: "execproxy", Name: "session_audit_webhook_records_total",
		Help: "Session audit records by what became of them at the webhook: delivered, refused (buffer full) or abandoned (at shutdown).",
	}, []string{"result"})
)

func init() {
	legacyregistry.MustRegister(recordsTotal, missingTotal, webhookPending, webhookRecords)
}
