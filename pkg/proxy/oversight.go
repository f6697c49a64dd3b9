package proxy

import (
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/exec-proxy/exec-proxy/pkg/commandline"
	"github.com/exec-proxy/exec-proxy/pkg/oversight"
	"github.com/exec-proxy/exec-proxy/pkg/policy"
	"github.com/exec-proxy/exec-proxy/pkg/recording"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// newTap is the oversight of session s: exec and attach sessions with a TTY have a terminal to
// watch, and a moderation when m (its rule's) requires one; others have none (nil: the policy
// refuses them a moderation).
func newTap(s *Session, m *policy.Moderation) *oversight.Tap {
	if !s.TTY || s.Kind == session.KindPortForward {
		return nil
	}
	if m == nil {
		return oversight.NewTap(nil)
	}
	return oversight.NewTap(oversight.NewModeration(m.GracePeriod.Duration, clock.RealClock{}, oversight.ModerationHooks{
		Alone: s.moderatorsLeft,
		Lost: func() {
			klog.InfoS("Ending the session: no moderator for its grace period", "session", s.ID, "gracePeriod", m.GracePeriod.Duration)
			s.Kill(session.ReasonModeratorLeft)
		},
	}))
}

// moderatorsLeft tells the session's client that its last moderator left.
func (s *Session) moderatorsLeft(grace time.Duration) {
	s.mu.Lock()
	client := s.client
	s.mu.Unlock()
	if client == nil || !client.Noticeable() {
		return
	}
	text := fmt.Sprintf("\r\n[exec-proxy: the last moderator left; this session ends in %v unless a moderator returns]\r\n", grace)
	if err := client.Notice([]byte(text)); err != nil {
		klog.V(2).InfoS("The session's client was not told its last moderator left", "session", s.ID, "err", err)
	}
}

// Terminal is the session's terminal as its watchers see it; nil when it has none (no TTY).
func (s *Session) Terminal() *oversight.Terminal { return s.tap.Terminal() }

// Moderation is who moderates the session; nil when its rule requires no moderator.
func (s *Session) Moderation() *oversight.Moderation { return s.tap.Moderation() }

// endWatches ends the watches of a session that ended, and its moderation.
func (s *Session) endWatches() {
	if t := s.Terminal(); t != nil {
		t.End()
	}
	if m := s.Moderation(); m != nil {
		m.Stop()
	}
}

// awaitModerator holds a moderated session until its first moderator arrives (before exec-proxy
// connects to its kubelet); a Status if none arrives within the rule's timeout, or the session
// ends first (its client left, or it was killed).
func (s *Session) awaitModerator(logger klog.Logger) error {
	m := s.Moderation()
	if m == nil {
		return nil
	}
	timeout := s.decision.Moderation.Timeout.Duration
	logger.Info("Session waits for a moderator", "rule", s.decision.Rule, "timeout", timeout)
	resource := schema.GroupResource{Resource: "pods/" + string(s.Kind)}
	switch err := m.Await(s.ctx.Done(), timeout); {
	case err == nil:
		logger.Info("Session moderated", "moderators", m.Moderators())
		return nil
	case errors.Is(err, oversight.ErrNoModerator):
		return apierrors.NewForbidden(resource, s.Pod, fmt.Errorf("session policy rule %q requires a moderator, and none joined within %v: "+
			"a moderator finds the waiting sessions with `kubectl execproxy sessions -n %s` and joins one with `kubectl execproxy join ID`; try again with one ready", s.decision.Rule, timeout, s.Namespace))
	}
	why := "the session ended while it waited for a moderator (session policy rule %q)"
	if reason := s.EndReason(); reason != "" {
		return apierrors.NewForbidden(resource, s.Pod, fmt.Errorf(why+": %s", s.decision.Rule, reason))
	}
	return apierrors.NewForbidden(resource, s.Pod, fmt.Errorf(why, s.decision.Rule))
}

// waitingForModerator tells whether s is a moderated session that has not started yet.
func (s *Session) waitingForModerator() bool {
	m := s.Moderation()
	return m != nil && !m.IsStarted()
}

// recordCommands has the command lines typed in s written to the audit as they are entered, and
// marked in its recording (sink, nil: none). A record the audit cannot take under fail-closed
// ends the session, as a start record would have refused it.
func recordCommands(s *Session, audit *sessionaudit.Auditor, attempt *sessionaudit.Attempt, sink recording.Sink) {
	if s.tap == nil || audit == nil || !audit.Commands {
		return
	}
	s.tap.StartCommands(func(c commandline.Command) {
		if sink != nil {
			sink.Add("m", []byte(marker(c)))
		}
		if !audit.Command(attempt, sessionaudit.TypedCommand{Seq: c.Seq, At: c.At, Line: c.Line, Confidence: c.Confidence, Why: c.Why}) {
			klog.ErrorS(nil, "Session ended: its command's audit record could not be written", "session", s.ID, "sequence", c.Seq)
			go s.Kill(session.ReasonAuditUnavailable)
		}
	})
}

// marker is a command's label in the recording.
func marker(c commandline.Command) string {
	if c.Line == "" {
		return "(a line typed without echo)"
	}
	return c.Line
}
