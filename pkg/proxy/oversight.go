package proxy

import (
	"sync/atomic"

	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/pkg/commandline"
	"github.com/exec-proxy/exec-proxy/pkg/oversight"
	"github.com/exec-proxy/exec-proxy/pkg/recording"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
	"github.com/exec-proxy/exec-proxy/pkg/terminal"
)

// overseen hears a TTY session's terminal besides its recording: the screen its watchers see
// (package oversight) and the command lines typed (package commandline). Its frame readers hand
// it the payload (streamStats.Data) and the sizes.
type overseen struct {
	terminal *oversight.Terminal
	// commands, set as the session starts when its commands are recorded, reads the command lines.
	commands atomic.Pointer[commandline.Tracker]
}

// newOverseen is the oversight of a session: exec and attach sessions with a TTY have a terminal
// to watch; others have none (nil).
func newOverseen(id Identity) *overseen {
	if !id.TTY || id.Kind == session.KindPortForward {
		return nil
	}
	return &overseen{terminal: oversight.New(terminal.New(defaultWidth, defaultHeight))}
}

// The size a screen has until the client sends one, as asciicast's default.
const defaultWidth, defaultHeight = 80, 24

func (o *overseen) data(stream string, p []byte) {
	c := o.commands.Load()
	switch stream {
	case "stdout":
		o.terminal.Output(p)
		if c != nil {
			c.Output(p)
		}
	case "stdin":
		if c != nil {
			c.Input(p)
		}
	}
}

// wants tells whether stream's bytes are read: the output always, the input for the commands.
func (o *overseen) wants(stream string) bool {
	return stream == "stdout" || (stream == "stdin" && o.commands.Load() != nil)
}

func (o *overseen) resize(width, height int) {
	o.terminal.Resize(width, height)
	if c := o.commands.Load(); c != nil {
		c.Resize(width, height)
	}
}

// Terminal is the session's terminal as its watchers see it; nil when it has none (no TTY).
func (s *Session) Terminal() *oversight.Terminal {
	if s.streams.overseen == nil {
		return nil
	}
	return s.streams.overseen.terminal
}

// endWatches ends the watches of a session that ended.
func (s *Session) endWatches() {
	if s.streams.overseen != nil {
		s.streams.overseen.terminal.End()
	}
}

// recordCommands has the command lines typed in s written to the audit as they are entered, and
// marked in its recording (sink, nil: none). A record the audit cannot take under fail-closed
// ends the session, as a start record would have refused it.
func recordCommands(s *Session, audit *sessionaudit.Auditor, attempt *sessionaudit.Attempt, sink recording.Sink) {
	o := s.streams.overseen
	if o == nil || audit == nil || !audit.Commands {
		return
	}
	o.commands.Store(commandline.NewTracker(defaultWidth, defaultHeight, func(c commandline.Command) {
		if sink != nil {
			sink.Add("m", []byte(marker(c)))
		}
		if !audit.Command(attempt, sessionaudit.TypedCommand{Seq: c.Seq, At: c.At, Line: c.Line, Confidence: c.Confidence, Why: c.Why}) {
			klog.ErrorS(nil, "Session ended: its command's audit record could not be written", "session", s.ID, "sequence", c.Seq)
			go s.Kill(session.ReasonAuditUnavailable)
		}
	}))
}

// marker is a command's label in the recording.
func marker(c commandline.Command) string {
	if c.Line == "" {
		return "(a line typed without echo)"
	}
	return c.Line
}
