package sessionaudit

import (
	"sync"
	"sync/atomic"
	"time"

	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/audit"
	"k8s.io/klog/v2"
)

// webhookMaxBackoff is the longest wait between two tries of a batch (a variable for tests).
var webhookMaxBackoff = 30 * time.Second

// webhookQueue counts the records between acceptance and delivery. The buffered backend's
// ProcessEvents reports success even when its buffer is full and it drops the record; the queue
// refuses such a record first, so the loss is known (fail-closed refuses the session) and the
// buffered backend never drops one silently.
type webhookQueue struct {
	limit   int64
	pending atomic.Int64
}

func (q *webhookQueue) add(n int) bool {
	if q.pending.Add(int64(n)) > q.limit {
		q.done(n)
		return false
	}
	webhookPending.Set(float64(q.pending.Load()))
	return true
}

func (q *webhookQueue) done(n int) {
	webhookPending.Set(float64(q.pending.Add(-int64(n))))
}

// gatedBackend is the buffered backend behind the queue's limit.
type gatedBackend struct {
	audit.Backend
	queue *webhookQueue
}

func (g *gatedBackend) ProcessEvents(ev ...*auditinternal.Event) bool {
	if !g.queue.add(len(ev)) {
		webhookRecords.WithLabelValues("refused").Add(float64(len(ev)))
		return false
	}
	if !g.Backend.ProcessEvents(ev...) { // shut down
		g.queue.done(len(ev))
		return false
	}
	return true
}

// retryingBackend sends each batch to the webhook until it is delivered. Upstream's webhook
// backend gives a batch up after its backoff steps (about a minute by default); a longer outage
// would lose it. The buffered backend sends one batch at a time, so records keep their order and
// wait in its buffer meanwhile. Only at shutdown, once the deadline passes, are batches abandoned.
type retryingBackend struct {
	audit.Backend // upstream's webhook backend
	queue         *webhookQueue
	initial       time.Duration
	maxDelay      time.Duration
	giveUp        chan struct{}
	giveUpOnce    sync.Once
}

func (r *retryingBackend) ProcessEvents(ev ...*auditinternal.Event) bool {
	defer r.queue.done(len(ev))
	delay := r.initial
	for attempt := 1; !r.Backend.ProcessEvents(ev...); attempt++ {
		timer := time.NewTimer(delay)
		select {
		case <-r.giveUp:
			timer.Stop()
			webhookRecords.WithLabelValues("abandoned").Add(float64(len(ev)))
			klog.ErrorS(nil, "Session audit records abandoned: the webhook did not take them before shutdown", "records", len(ev))
			return false
		case <-timer.C:
		}
		klog.InfoS("Retrying session audit records the webhook did not take", "records", len(ev), "attempt", attempt+1)
		delay = min(2*delay, r.maxDelay)
	}
	webhookRecords.WithLabelValues("delivered").Add(float64(len(ev)))
	return true
}

func newRetryingBackend(webhook audit.Backend, queue *webhookQueue, initial time.Duration) *retryingBackend {
	return &retryingBackend{Backend: webhook, queue: queue, initial: initial, maxDelay: max(initial, webhookMaxBackoff),
		giveUp: make(chan struct{})}
}

// abandonAfter makes batches still undelivered after d give up, so shutdown ends.
func (r *retryingBackend) abandonAfter(d time.Duration) {
	time.AfterFunc(d, func() { r.giveUpOnce.Do(func() { close(r.giveUp) }) })
}
