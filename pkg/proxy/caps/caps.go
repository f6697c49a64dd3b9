// Package caps is the caps and start rate a session is admitted under: the flags' caps on
// concurrent sessions (all, per user, per node), a session policy rule's, and the per-user start
// rate, counted across replicas when told what the others hold.
package caps

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

// Caps are the flags' caps on concurrent sessions and on their start rate. Zero means unlimited.
type Caps struct {
	SessionStartQPS    float64
	SessionStartBurst  int
	MaxSessions        int
	MaxSessionsPerUser int
	MaxSessionsPerNode int
}

// userLimiterCap bounds the per-user start buckets kept in memory; full buckets are dropped first.
const userLimiterCap = 10000

// Elsewhere is what the other replicas hold, as last heard; *peers.Tally in production.
type Elsewhere interface {
	Of(user, rule string) peers.Held
}

// Rule is a session policy rule's caps on its concurrent sessions; zero: none. Name "" is a
// session no rule matched.
type Rule struct {
	Name                    string
	MaxSessions, MaxPerUser int
}

// Admitter enforces the start rate and the caps on concurrent sessions.
type Admitter struct {
	caps Caps
	now  func() time.Time

	mu sync.Mutex
	// elsewhere makes the caps but the per-node one hold across replicas; nil: this replica's only.
	elsewhere Elsewhere
	starts    map[string]*rate.Limiter
	// held is this replica's sessions by user and rule; perNode by node.
	held    peers.Counts
	perNode map[string]int
}

// New returns an Admitter that counts this replica's sessions only, until CountElsewhere.
func New(c Caps) *Admitter {
	return &Admitter{caps: c, now: time.Now, starts: map[string]*rate.Limiter{}, perNode: map[string]int{}}
}

// CountElsewhere makes the caps but the per-node one count the other replicas' sessions too.
func (a *Admitter) CountElsewhere(e Elsewhere) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.elsewhere = e
}

// ThrottleError is a 429 naming the cap or rate that refused the session.
type ThrottleError struct {
	reason string
	err    *apierrors.StatusError
}

// Reason names the cap or rate, as the throttled metric is labelled: max-sessions,
// max-sessions-per-user, max-sessions-per-node, session-start-rate, policy-rule or
// policy-rule-per-user.
func (t *ThrottleError) Reason() string { return t.reason }

func (t *ThrottleError) Error() string { return t.err.Error() }
func (t *ThrottleError) Unwrap() error { return t.err }

// Status makes it an APIStatus: the apiserver's error writers check the type, not the chain.
func (t *ThrottleError) Status() metav1.Status { return t.err.Status() }

func tooMany(reason string, retryAfter int, format string, args ...interface{}) error {
	return &ThrottleError{reason: reason, err: apierrors.NewTooManyRequests(fmt.Sprintf(format, args...), retryAfter)}
}

// Admit takes a session slot for user on node under rule, or returns a *ThrottleError. release
// gives the slot back; calls after the first do nothing.
func (a *Admitter) Admit(user, node string, rule Rule) (release func(), err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.caps
	n := a.held.Of(user, rule.Name)
	n.Replicas = 1
	if a.elsewhere != nil {
		n = n.Plus(a.elsewhere.Of(user, rule.Name))
	}
	across := ""
	if n.Replicas > 1 {
		across = fmt.Sprintf(" across %d replicas", n.Replicas)
	}
	switch {
	case rule.MaxSessions > 0 && n.Rule >= rule.MaxSessions:
		return nil, tooMany("policy-rule", 1, "session policy rule %q allows %d concurrent sessions, and all are in use%s; retry later", rule.Name, rule.MaxSessions, across)
	case rule.MaxPerUser > 0 && n.RuleUser >= rule.MaxPerUser:
		return nil, tooMany("policy-rule-per-user", 1, "user %q has %d concurrent sessions%s under session policy rule %q, which allows %d", user, n.RuleUser, across, rule.Name, rule.MaxPerUser)
	case c.MaxSessions > 0 && n.Total >= c.MaxSessions:
		return nil, tooMany("max-sessions", 1, "exec-proxy is at its limit of %d concurrent sessions%s (--max-sessions); retry later", c.MaxSessions, across)
	case c.MaxSessionsPerUser > 0 && n.User >= c.MaxSessionsPerUser:
		return nil, tooMany("max-sessions-per-user", 1, "user %q has %d concurrent sessions%s, the limit is %d (--max-sessions-per-user)", user, n.User, across, c.MaxSessionsPerUser)
	case c.MaxSessionsPerNode > 0 && a.perNode[node] >= c.MaxSessionsPerNode:
		return nil, tooMany("max-sessions-per-node", 1, "node %q has %d concurrent sessions, the limit is %d (--max-sessions-per-node)", node, a.perNode[node], c.MaxSessionsPerNode)
	}
	if err := a.takeStart(user); err != nil {
		return nil, err
	}
	a.held.Add(user, rule.Name, 1)
	a.perNode[node]++
	var once sync.Once
	return func() { once.Do(func() { a.release(user, node, rule.Name) }) }, nil
}

func (a *Admitter) takeStart(user string) error {
	c := a.caps
	if c.SessionStartQPS <= 0 {
		return nil
	}
	lim, ok := a.starts[user]
	if !ok {
		a.pruneStarts()
		lim = rate.NewLimiter(rate.Limit(c.SessionStartQPS), max(c.SessionStartBurst, 1))
		a.starts[user] = lim
	}
	now := a.now()
	r := lim.ReserveN(now, 1)
	if delay := r.DelayFrom(now); delay > 0 {
		r.CancelAt(now)
		return tooMany("session-start-rate", int(math.Ceil(delay.Seconds())),
			"user %q started sessions faster than %g per second (burst %d, --session-start-qps/--session-start-burst); retry in %s",
			user, c.SessionStartQPS, c.SessionStartBurst, delay.Round(time.Millisecond))
	}
	return nil
}

// pruneStarts forgets users whose bucket is full again: they behave as new users.
func (a *Admitter) pruneStarts() {
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

func (a *Admitter) release(user, node, rule string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.held.Add(user, rule, -1)
	if a.perNode[node]--; a.perNode[node] <= 0 {
		delete(a.perNode, node)
	}
}

// Counts returns this replica's sessions, as the other replicas are told.
func (a *Admitter) Counts() peers.Counts {
	a.mu.Lock()
	defer a.mu.Unlock()
	var c peers.Counts
	c.Merge(a.held)
	return c
}
