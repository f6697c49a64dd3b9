package oversight

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Moderation is who moderates a session that a session policy rule holds under moderation: the
// session starts once a moderator watches or joins it, and is ended once none has for the grace
// period. Who counts as a moderator is the caller's to decide (package execsession).
type Moderation struct {
	grace time.Duration
	clock clock.WithDelayedExecution
	hooks ModerationHooks

	mu         sync.Mutex
	moderators map[int]string // one entry per watch, with the moderator's name
	next       int
	arrived    chan struct{} // closed as the first moderator arrives
	started    chan struct{} // closed as the session starts (its 101 went out)
	lost       clock.Timer   // runs while no moderator is present, after one was
	alone      int           // counts the times the last moderator left: a timer of an earlier one is stale
	stopped    bool          // the session ended: its moderators' leaving starts no grace period
}

// ModerationHooks are what the session does as its moderators come and go.
type ModerationHooks struct {
	// Alone runs as the last moderator leaves a started session: the grace period begins.
	Alone func(grace time.Duration)
	// Lost runs once no moderator has been present for the grace period: the session must end.
	Lost func()
}

// NewModeration is the moderation of a session that goes on for grace once its last moderator left.
func NewModeration(grace time.Duration, clk clock.WithDelayedExecution, hooks ModerationHooks) *Moderation {
	return &Moderation{grace: grace, clock: clk, hooks: hooks, moderators: map[int]string{},
		arrived: make(chan struct{}), started: make(chan struct{})}
}

// Arrive counts name as a moderator until leave is called (once).
func (m *Moderation) Arrive(name string) (leave func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	key := m.next
	m.moderators[key] = name
	if m.lost != nil {
		m.lost.Stop()
		m.lost = nil
	}
	select {
	case <-m.arrived:
	default:
		close(m.arrived)
	}
	var once sync.Once
	return func() { once.Do(func() { m.leave(key) }) }
}

func (m *Moderation) leave(key int) {
	m.mu.Lock()
	delete(m.moderators, key)
	alone := len(m.moderators) == 0 && !m.stopped
	if alone {
		m.alone++
		n := m.alone
		m.lost = m.clock.AfterFunc(m.grace, func() { m.expire(n) })
	}
	m.mu.Unlock()
	if alone && m.isStarted() && m.hooks.Alone != nil {
		m.hooks.Alone(m.grace)
	}
}

// expire ends the session unless a moderator came back since the n-th time the last one left.
func (m *Moderation) expire(n int) {
	m.mu.Lock()
	lost := len(m.moderators) == 0 && m.alone == n
	m.mu.Unlock()
	if lost && m.hooks.Lost != nil {
		m.hooks.Lost()
	}
}

// Arrived is closed once a moderator arrived: the session may start.
func (m *Moderation) Arrived() <-chan struct{} { return m.arrived }

// Start tells the moderation that the session started.
func (m *Moderation) Start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.started:
	default:
		close(m.started)
	}
}

// Started is closed once the session started.
func (m *Moderation) Started() <-chan struct{} { return m.started }

func (m *Moderation) isStarted() bool {
	select {
	case <-m.started:
		return true
	default:
		return false
	}
}

// Moderators are the names of those moderating now, sorted, each once.
func (m *Moderation) Moderators() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for _, n := range m.moderators {
		names = append(names, n)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Intro is what a moderator of user's session sees first.
func (m *Moderation) Intro(user string) []byte {
	state := "it runs"
	if !m.isStarted() {
		state = "it starts now that a moderator is here"
	}
	return []byte(fmt.Sprintf("\r\n[exec-proxy: you moderate this session of %s: %s, and it ends %v after its last moderator leaves]\r\n",
		terminalSafe(user), state, m.grace))
}

// Stop stops the grace period's timer, and any later one: the session ended (its watches end
// after it, and a timer would hold it for the grace period).
func (m *Moderation) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped = true
	if m.lost != nil {
		m.lost.Stop()
		m.lost = nil
	}
}
