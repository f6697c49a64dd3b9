package peers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// CountsPath is where a replica tells the others how many sessions it holds, so that the session
// caps hold across replicas. It is no resource of the API group: only exec-proxy's own identity
// may read it, since it names users.
const CountsPath = "/peer/sessioncounts"

const (
	// countsPeriod is how often the other replicas' counts are asked for.
	countsPeriod = time.Second
	// countsTimeout bounds a round of asking: a hung peer must not stall the others' counts.
	countsTimeout = time.Second
	// maxCounts bounds a counts answer: 10,000 users of 250-byte names, each also under a rule.
	maxCounts = 8 << 20
)

// Counts are the sessions one replica holds, by user and by session policy rule.
type Counts struct {
	Total int            `json:"total"`
	Users map[string]int `json:"users,omitempty"`
	// Rules and RuleUsers count the sessions a rule matched (all of them, capped or not: a
	// reload that adds a cap counts those already running), and each user's under it.
	Rules     map[string]int            `json:"rules,omitempty"`
	RuleUsers map[string]map[string]int `json:"ruleUsers,omitempty"`
}

// Add counts n more sessions of user under rule ("": none matched); a negative n counts them out.
func (c *Counts) Add(user, rule string, n int) {
	c.Total += n
	c.Users = addTo(c.Users, user, n)
	if rule == "" {
		return
	}
	c.Rules = addTo(c.Rules, rule, n)
	c.addRuleUser(rule, user, n)
}

// addRuleUser adds n to user's sessions under rule, forgetting a rule with none.
func (c *Counts) addRuleUser(rule, user string, n int) {
	if c.RuleUsers == nil {
		c.RuleUsers = map[string]map[string]int{}
	}
	if c.RuleUsers[rule] = addTo(c.RuleUsers[rule], user, n); len(c.RuleUsers[rule]) == 0 {
		delete(c.RuleUsers, rule)
	}
}

// addTo adds n to m[k], forgetting k at zero, so that the counts name only users with sessions.
func addTo(m map[string]int, k string, n int) map[string]int {
	if m == nil {
		m = map[string]int{}
	}
	if m[k] += n; m[k] <= 0 {
		delete(m, k)
	}
	return m
}

// Merge adds o's sessions to c.
func (c *Counts) Merge(o Counts) {
	c.Total += o.Total
	for u, n := range o.Users {
		c.Users = addTo(c.Users, u, n)
	}
	for r, n := range o.Rules {
		c.Rules = addTo(c.Rules, r, n)
	}
	for r, users := range o.RuleUsers {
		for u, n := range users {
			c.addRuleUser(r, u, n)
		}
	}
}

// Of returns what c says of user under rule.
func (c *Counts) Of(user, rule string) Held {
	return Held{Total: c.Total, User: c.Users[user], Rule: c.Rules[rule], RuleUser: c.RuleUsers[rule][user]}
}

// Held is how many sessions some replicas hold: in all, of a user, under a rule, and of the user
// under the rule.
type Held struct {
	Replicas, Total, User, Rule, RuleUser int
}

// Plus returns the sessions h and o hold together.
func (h Held) Plus(o Held) Held {
	return Held{h.Replicas + o.Replicas, h.Total + o.Total, h.User + o.User, h.Rule + o.Rule, h.RuleUser + o.RuleUser}
}

// Tally tells the other replicas this one's counts (ServeHTTP) and keeps theirs (Run), for the caps
// to count (Of). The caps count a peer's sessions as last heard, so a cap is exceeded only by what is
// started on the other replicas since: a round starts at most countsPeriod after the last one began
// and ends within countsTimeout, so while peers answer that is at most countsPeriod+countsTimeout
// ago, in which each replica's per-user start rate lets a user start at most burst + qps × that
// (README.md, "Limits across replicas").
type Tally struct {
	Peers *Peers
	// Self is exec-proxy's own identity, the only one told the counts.
	Self *Identity
	// Local returns this replica's counts.
	Local func() Counts
	// FailOpen stops counting a peer's sessions when it does not answer; otherwise they count as
	// last heard until its lease expires.
	FailOpen bool
	// Clock ticks the asking and ages the counts; the real clock when nil.
	Clock clock.WithTicker

	mu    sync.RWMutex
	heard map[string]heard // by peer name
	sum   Counts           // of heard
	// failing are the peers whose last answer failed, for logging the change only.
	failing map[string]bool
}

// heard is a peer's counts and when they were answered.
type heard struct {
	counts Counts
	at     time.Time
}

// Of returns the sessions the other replicas hold, as last heard. It asks no one: a session's
// start waits for no peer.
func (t *Tally) Of(user, rule string) Held {
	t.mu.RLock()
	defer t.mu.RUnlock()
	h := t.sum.Of(user, rule)
	h.Replicas = len(t.heard)
	return h
}

// ServeHTTP answers CountsPath to exec-proxy's own identity; anyone else is forbidden.
func (t *Tally) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	caller, ok := request.UserFrom(req.Context())
	if !ok || !t.Self.Is(req.Context(), caller.GetName()) {
		session.WriteStatus(w, req, apierrors.NewForbidden(schema.GroupResource{}, "",
			errors.New("only exec-proxy's replicas may read their session counts")))
		return
	}
	if req.Method != http.MethodGet {
		session.WriteStatus(w, req, apierrors.NewMethodNotSupported(schema.GroupResource{Resource: "sessioncounts"}, req.Method))
		return
	}
	body, err := json.Marshal(t.Local())
	if err == nil && len(body) > maxCounts {
		err = fmt.Errorf("session counts of %d bytes, over the %d peers read", len(body), maxCounts)
	}
	if err != nil {
		session.WriteStatus(w, req, apierrors.NewInternalError(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// Run asks the other replicas for their counts every countsPeriod until ctx ends.
func (t *Tally) Run(ctx context.Context) {
	ticker := t.clock().NewTicker(countsPeriod)
	defer ticker.Stop()
	for {
		t.refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		}
	}
}

func (t *Tally) clock() clock.WithTicker {
	if t.Clock == nil {
		return clock.RealClock{}
	}
	return t.Clock
}

// refresh asks every peer whose lease is current for its counts, at once. Counts of a peer whose
// lease expired or went are dropped; those of a peer that does not answer are kept unless FailOpen.
func (t *Tally) refresh(ctx context.Context) {
	logger := klog.FromContext(ctx)
	peers, answers, err := t.Peers.askAll(ctx, http.MethodGet, CountsPath, "", countsTimeout, maxCounts)
	if err != nil {
		logger.Error(err, "Could not find the other replicas; their session counts are kept as last heard")
		return
	}
	now := t.clock().Now()
	t.mu.RLock()
	last := t.heard
	t.mu.RUnlock()
	next := map[string]heard{}
	failing := map[string]bool{}
	for i, peer := range peers {
		var c Counts
		err := decodeCounts(answers[i], &c)
		if err == nil {
			next[peer.name] = heard{c, now}
			if t.failing[peer.name] {
				logger.Info("A replica's session counts are heard again", "peer", answers[i].Peer)
			}
			continue
		}
		countsFailures.Inc()
		failing[peer.name] = true
		old, known := last[peer.name]
		if known && !t.FailOpen {
			next[peer.name] = old
		}
		if !t.failing[peer.name] {
			logger.Error(err, "Could not hear a replica's session counts", "peer", answers[i].Peer,
				"countedAsLastHeard", known && !t.FailOpen, "lastHeard", old.at)
		}
	}
	var sum Counts
	oldest := now
	for _, h := range next {
		sum.Merge(h.counts)
		if h.at.Before(oldest) {
			oldest = h.at
		}
	}
	countsAge.Set(now.Sub(oldest).Seconds())
	t.failing = failing
	t.mu.Lock()
	t.heard, t.sum = next, sum
	t.mu.Unlock()
}

// decodeCounts reads a peer's counts, or says why there are none.
func decodeCounts(a Answer, c *Counts) error {
	if a.Err != nil {
		return a.Err
	}
	if a.Code != http.StatusOK {
		return fmt.Errorf("answered %d: %.200s", a.Code, a.Body)
	}
	if err := json.Unmarshal(a.Body, c); err != nil {
		return fmt.Errorf("unreadable session counts: %w", err)
	}
	return nil
}
