package proxy

import (
	"cmp"
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// liveSessions are the sessions open on this replica, for timeouts and draining at shutdown.
type liveSessions struct {
	mu       sync.Mutex
	sessions map[*Session]struct{}
	draining bool
	empty    chan struct{} // closed when draining and no session is left
}

func newLiveSessions() *liveSessions { return &liveSessions{sessions: map[*Session]struct{}{}} }

func (r *liveSessions) add(s *Session) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.draining {
		return apierrors.NewServiceUnavailable("exec-proxy is shutting down and takes no new sessions; retry to reach another replica")
	}
	r.sessions[s] = struct{}{}
	sessionsActive.Set(float64(len(r.sessions)))
	return nil
}

func (r *liveSessions) remove(s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.sessions, s)
	sessionsActive.Set(float64(len(r.sessions)))
	if r.draining && len(r.sessions) == 0 && r.empty != nil {
		close(r.empty)
		r.empty = nil
	}
}

func (r *liveSessions) snapshot() []*Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Session, 0, len(r.sessions))
	for s := range r.sessions {
		out = append(out, s)
	}
	return out
}

// sweep ends sessions past their idle timeout or maximum duration: their session policy rule's,
// or else the flags'.
func (r *liveSessions) sweep(now time.Time, l Limits) {
	for _, s := range r.snapshot() {
		if s.waitingForModerator() { // its rule's moderator timeout bounds the wait
			continue
		}
		rule := s.decision.Limits
		maxDuration, idle := cmp.Or(rule.MaxDuration.Duration, l.MaxSessionDuration), cmp.Or(rule.IdleTimeout.Duration, l.IdleTimeout)
		switch {
		case maxDuration > 0 && now.Sub(s.Start) >= maxDuration:
			s.Kill(session.ReasonMaxDuration)
		case idle > 0 && now.Sub(time.Unix(0, s.traffic.lastActive.Load())) >= idle:
			s.Kill(session.ReasonIdleTimeout)
		}
	}
}

// drain refuses new sessions, lets live ones run until grace ends, then ends them and waits for
// their handlers to return (bounded by ctx).
func (r *liveSessions) drain(ctx context.Context, grace time.Duration) int {
	r.mu.Lock()
	r.draining = true
	empty := make(chan struct{})
	if len(r.sessions) == 0 {
		close(empty)
	} else {
		r.empty = empty
	}
	r.mu.Unlock()

	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-empty:
		return 0
	case <-timer.C:
	case <-ctx.Done():
	}
	live := r.snapshot()
	for _, s := range live {
		s.Kill(session.ReasonProxyShutdown)
	}
	select {
	case <-empty:
	case <-ctx.Done():
	}
	return len(live)
}
