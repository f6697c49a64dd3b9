package proxy

import (
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// admitter enforces the start rate and concurrency limits.
type admitter struct {
	limits Limits
	now    func() time.Time

	mu      sync.Mutex
	starts  map[string]*rate.Limiter
	total   int
	perUser map[string]int
	perNode map[string]int
	// perRule and perRuleUser count the sessions of each session policy rule, and of each of its
	// users.
	perRule     map[string]int
	perRuleUser map[ruleUser]int
}

type ruleUser struct{ rule, user string }

// ruleCaps are a session policy rule's caps on its concurrent sessions; zero: none.
type ruleCaps struct {
	rule                    string
	maxSessions, maxPerUser int
}

func newAdmitter(l Limits) *admitter {
	return &admitter{limits: l, now: time.Now, starts: map[string]*rate.Limiter{},
		perUser: map[string]int{}, perNode: map[string]int{}, perRule: map[string]int{}, perRuleUser: map[ruleUser]int{}}
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
	ru := ruleUser{rule.rule, user}
	switch {
	case rule.maxSessions > 0 && a.perRule[rule.rule] >= rule.maxSessions:
		return nil, tooMany("policy-rule", 1, "session policy rule %q allows %d concurrent sessions on this replica, and all are in use; retry later", rule.rule, rule.maxSessions)
	case rule.maxPerUser > 0 && a.perRuleUser[ru] >= rule.maxPerUser:
		return nil, tooMany("policy-rule-per-user", 1, "user %q has %d concurrent sessions under session policy rule %q, which allows %d", user, a.perRuleUser[ru], rule.rule, rule.maxPerUser)
	case l.MaxSessions > 0 && a.total >= l.MaxSessions:
		return nil, tooMany("max-sessions", 1, "exec-proxy is at its limit of %d concurrent sessions (--max-sessions); retry later", l.MaxSessions)
	case l.MaxSessionsPerUser > 0 && a.perUser[user] >= l.MaxSessionsPerUser:
		return nil, tooMany("max-sessions-per-user", 1, "user %q has %d concurrent sessions, the limit is %d (--max-sessions-per-user)", user, a.perUser[user], l.MaxSessionsPerUser)
	case l.MaxSessionsPerNode > 0 && a.perNode[node] >= l.MaxSessionsPerNode:
		return nil, tooMany("max-sessions-per-node", 1, "node %q has %d concurrent sessions, the limit is %d (--max-sessions-per-node)", node, a.perNode[node], l.MaxSessionsPerNode)
	}
	if err := a.takeStart(user); err != nil {
		return nil, err
	}
	a.total++
	a.perUser[user]++
	a.perNode[node]++
	// Every rule's sessions are counted, capped or not: a reload that adds a cap counts those
	// already running.
	counted := rule.rule != ""
	if counted {
		a.perRule[rule.rule]++
		a.perRuleUser[ru]++
	}
	var once sync.Once
	return func() { once.Do(func() { a.release(user, node, ru, counted) }) }, nil
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

func (a *admitter) release(user, node string, ru ruleUser, counted bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if counted {
		if a.perRule[ru.rule]--; a.perRule[ru.rule] <= 0 {
			delete(a.perRule, ru.rule)
		}
		if a.perRuleUser[ru]--; a.perRuleUser[ru] <= 0 {
			delete(a.perRuleUser, ru)
		}
	}
	a.total--
	if a.perUser[user]--; a.perUser[user] <= 0 {
		delete(a.perUser, user)
	}
	if a.perNode[node]--; a.perNode[node] <= 0 {
		delete(a.perNode, node)
	}
}
