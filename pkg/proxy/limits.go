package proxy

import (
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/exec-proxy/exec-proxy/pkg/peers"
)

// Limits are the throttles on sessions. Zero means unlimited.
type Limits struct {
	SessionStartQPS       float64
	SessionStartBurst     int
	MaxSessions           int
	MaxSessionsPerUser    int
	MaxSessionsPerNode    int
	MaxBytesPerSecSession int64
	IdleTimeout           time.Duration
	MaxSessionDuration    time.Duration
}

// userLimiterCap bounds the per-user start buckets kept in memory; full buckets are dropped first.
const userLimiterCap = 10000

// Elsewhere is what the other replicas hold, as last heard; *peers.Tally in production.
type Elsewhere interface {
	Of(user, rule string) peers.Held
}

// admitter enforces the start rate and concurrency limits.
type admitter struct {
	limits Limits
	now    func() time.Time
	// elsewhere makes the caps but the per-node one hold across replicas; nil: this replica's only.
	elsewhere Elsewhere

	mu     sync.Mutex
	starts map[string]*rate.Limiter
	// held is this replica's sessions by user and rule; perNode by node.
	held    peers.Counts
	perNode map[string]int
}

// ruleCaps are a session policy rule's caps on its concurrent sessions; zero: none.
type ruleCaps struct {
	rule                    string
	maxSessions, maxPerUser int
}

func newAdmitter(l Limits) *admitter {
	return &admitter{limits: l, now: time.Now, starts: map[string]*rate.Limiter{}, perNode: map[string]int{}}
}

// throttleError is a 429 naming the limit; reason labels the metric.
type throttleError struct {
	reason string
	err    *apierrors.StatusError
}

func (t *throttleError) Error() string { return t.err.Error() }
func (t *throttleError) Unwrap() error { return t.err }

// Status makes it an APIStatus: the apiserver's error writers check the type, not the chain.
func (t *throttleError) Status() metav1.Status { return t.err.Status() }

func tooMany(reason string, retryAfter int, format string, args ...interface{}) error {
	return &throttleError{reason: reason, err: apierrors.NewTooManyRequests(fmt.Sprintf(format, args...), retryAfter)}
}

// admit takes a session slot for user on node under rule, or returns a 429 Status. release gives
// the slot back.
func (a *admitter) admit(user, node string, rule ruleCaps) (release func(), err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.limits
	n := a.held.Of(user, rule.rule)
	n.Replicas = 1
	if a.elsewhere != nil {
		n = n.Plus(a.elsewhere.Of(user, rule.rule))
	}
	across := ""
	if n.Replicas > 1 {
		across = fmt.Sprintf(" across %d replicas", n.Replicas)
	}
	switch {
	case rule.maxSessions > 0 && n.Rule >= rule.maxSessions:
		return nil, tooMany("policy-rule", 1, "session policy rule %q allows %d concurrent sessions, and all are in use%s; retry later", rule.rule, rule.maxSessions, across)
	case rule.maxPerUser > 0 && n.RuleUser >= rule.maxPerUser:
		return nil, tooMany("policy-rule-per-user", 1, "user %q has %d concurrent sessions%s under session policy rule %q, which allows %d", user, n.RuleUser, across, rule.rule, rule.maxPerUser)
	case l.MaxSessions > 0 && n.Total >= l.MaxSessions:
		return nil, tooMany("max-sessions", 1, "exec-proxy is at its limit of %d concurrent sessions%s (--max-sessions); retry later", l.MaxSessions, across)
	case l.MaxSessionsPerUser > 0 && n.User >= l.MaxSessionsPerUser:
		return nil, tooMany("max-sessions-per-user", 1, "user %q has %d concurrent sessions%s, the limit is %d (--max-sessions-per-user)", user, n.User, across, l.MaxSessionsPerUser)
	case l.MaxSessionsPerNode > 0 && a.perNode[node] >= l.MaxSessionsPerNode:
		return nil, tooMany("max-sessions-per-node", 1, "node %q has %d concurrent sessions, the limit is %d (--max-sessions-per-node)", node, a.perNode[node], l.MaxSessionsPerNode)
	}
	if err := a.takeStart(user); err != nil {
		return nil, err
	}
	a.held.Add(user, rule.rule, 1)
	a.perNode[node]++
	var once sync.Once
	return func() { once.Do(func() { a.release(user, node, rule.rule) }) }, nil
}

func (a *admitter) takeStart(user string) error {
	l := a.limits
	if l.SessionStartQPS <= 0 {
		return nil
	}
	lim, ok := a.starts[user]
	if !ok {
		a.pruneStarts()
		lim = rate.NewLimiter(rate.Limit(l.SessionStartQPS), max(l.SessionStartBurst, 1))
		a.starts[user] = lim
	}
	now := a.now()
	r := lim.ReserveN(now, 1)
	if delay := r.DelayFrom(now); delay > 0 {
		r.CancelAt(now)
		return tooMany("session-start-rate", int(math.Ceil(delay.Seconds())),
			"user %q started sessions faster than %g per second (burst %d, --session-start-qps/--session-start-burst); retry in %s",
			user, l.SessionStartQPS, l.SessionStartBurst, delay.Round(time.Millisecond))
	}
	return nil
}

// pruneStarts forgets users whose bucket is full again: they behave as new users.
func (a *admitter) pruneStarts() {
	if len(a.starts) < userLimiterCap {
		return
	}
	now := a.now()
	for u, lim := range a.starts {
		if lim.TokensAt(now) >= float64(lim.Burst()) {
			delete(a.starts, u)
		}
	}
}

func (a *admitter) release(user, node, rule string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.held.Add(user, rule, -1)
	if a.perNode[node]--; a.perNode[node] <= 0 {
		delete(a.perNode, node)
	}
}

// counts returns this replica's sessions, as the other replicas are told.
func (a *admitter) counts() peers.Counts {
	a.mu.Lock()
	defer a.mu.Unlock()
	var c peers.Counts
	c.Merge(a.held)
	return c
}
