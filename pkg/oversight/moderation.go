package oversight

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Moderation is who moderates a session that a session policy rule holds under moderation: the
// session starts once a moderator watches or joins it, and is ended once none has been there for
// the grace period; before it starts, a session whose moderators all left waits again. Who counts
// as a moderator is the caller's to decide (package execsession).
type Moderation struct {
	grace time.Duration
	clock clock.WithDelayedExecution
	hooks ModerationHooks

	mu         sync.Mutex
	moderators map[int]string // one entry per watch, with the moderator's name
	next       int
	present    chan struct{} // closed while a moderator is present; a new one once none is
	started    chan struct{} // closed as the session starts (its 101 went out)
	lost       clock.Timer   // runs while no moderator is present in a started session
	alone      int           // counts the times the last moderator left: a timer of an earlier one is stale
	stopped    bool          // the session ended: its moderators' leaving starts no grace period
	ever       []string      // everyone who moderated, sorted, at most maxModerated
}

// maxModerated bounds the names kept of everyone who moderated a session.
const maxModerated = 64

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
		present: make(chan struct{}), started: make(chan struct{})}
}

// Arrive counts name as a moderator until leave is called (once).
func (m *Moderation) Arrive(name string) (leave func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	key := m.next
	m.moderators[key] = name
	if i, found := slices.BinarySearch(m.ever, name); !found && len(m.ever) < maxModerated {
		m.ever = slices.Insert(m.ever, i, name)
	}
	if m.lost != nil {
		m.lost.Stop()
		m.lost = nil
	}
	if len(m.moderators) == 1 {
		close(m.present)
	}
	var once sync.Once
	return func() { once.Do(func() { m.leave(key) }) }
}

func (m *Moderation) leave(key int) {
	m.mu.Lock()
	if _, ok := m.moderators[key]; !ok {
		m.mu.Unlock()
		return
	}
	delete(m.moderators, key)
	alone := len(m.moderators) == 0
	if alone {
		m.present = make(chan struct{})
	}
	started := alone && m.IsStarted() && !m.stopped
	if started {
		m.startGrace()
	}
	m.mu.Unlock()
	if started && m.hooks.Alone != nil {
		m.hooks.Alone(m.grace)
	}
}

// startGrace starts the grace period of a started session without a moderator; mu is held.
func (m *Moderation) startGrace() {
	m.alone++
	n := m.alone
	m.lost = m.clock.AfterFunc(m.grace, func() { m.expire(n) })
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

// Present is closed while a moderator is present: the session may start. Ask again once it is
// closed, whether one still is (see Moderators): the last may have left since.
func (m *Moderation) Present() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.present
}

// Start tells the moderation that the session started. Its moderators may all have left as it
// did: the grace period begins at once.
func (m *Moderation) Start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.IsStarted() {
		return
	}
	close(m.started)
	if len(m.moderators) == 0 && !m.stopped {
		m.startGrace()
	}
}

// ErrNoModerator: no moderator was present within the time Await was given.
var ErrNoModerator = errors.New("no moderator came")

// Await returns once a moderator is present (nil), after timeout (ErrNoModerator), or once done
// is closed (ErrEnded). A moderator who came and left before it returns does not count.
func (m *Moderation) Await(done <-chan struct{}, timeout time.Duration) error {
	timer := m.clock.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case <-m.Present():
			if len(m.Moderators()) > 0 { // else the last left since: wait again
				return nil
			}
		case <-timer.C():
			return ErrNoModerator
		case <-done:
			return ErrEnded
		}
	}
}

// Started is closed once the session started.
func (m *Moderation) Started() <-chan struct{} { return m.started }

// IsStarted tells whether the session started.
func (m *Moderation) IsStarted() bool {
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

// Moderated are the names of everyone who moderated the session so far (at most 64), sorted.
func (m *Moderation) Moderated() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.ever)
}

// Intro is what a moderator of user's session sees first.
func (m *Moderation) Intro(user string) []byte {
	state := "it runs"
	if !m.IsStarted() {
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
