package proxy

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"

	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// lastRecord decides, once, who writes a session's last audit record when the client's connection
// is hijacked: the request's handler chain (the session ended before the handler could leave), or
// the session's own goroutine (the handler left, the session detached).
type lastRecord struct {
	attempt  *sessionaudit.Attempt
	hijacked chan struct{}
	over     chan struct{}

	once     sync.Once
	mu       sync.Mutex
	ended    bool
	detached bool
}

func (h *lastRecord) hijack() { h.once.Do(func() { close(h.hijacked) }) }

// detach is the handler's side: it leaves unless the session already ended.
func (h *lastRecord) detach() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ended {
		h.detached = true
		h.attempt.Detach()
	}
	return h.detached
}

// finished is the session's side: whether it detached, and so writes its own last record.
func (h *lastRecord) finished() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ended = true
	return h.detached
}

// logPanic keeps a panic in a session from ending exec-proxy (r is what recover returned): the
// handler chain, which recovers a request's panics, is no longer below a detached session.
func logPanic(logger klog.Logger, r any) {
	if r != nil && r != http.ErrAbortHandler {
		logger.Error(fmt.Errorf("%v", r), "Session panicked", "stack", string(debug.Stack()))
	}
}
