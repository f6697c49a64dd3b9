package proxy

import (
	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/pkg/commandline"
	"github.com/exec-proxy/exec-proxy/pkg/oversight"
	"github.com/exec-proxy/exec-proxy/pkg/recording"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// newTap is the oversight of a session: exec and attach sessions with a TTY have a terminal to
// watch; others have none (nil).
func newTap(id Identity) *oversight.Tap {
	if !id.TTY || id.Kind == session.KindPortForward {
		return nil
	}
	return oversight.NewTap()
}

// Terminal is the session's terminal as its watchers see it; nil when it has none (no TTY).
func (s *Session) Terminal() *oversight.Terminal { return s.tap.Terminal() }

// endWatches ends the watches of a session that ended.
func (s *Session) endWatches() {
	if t := s.Terminal(); t != nil {
		t.End()
	}
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
