package proxy

import (
	"github.com/exec-proxy/exec-proxy/pkg/oversight"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/terminal"
)

// overseen hears a TTY session's terminal besides its recording: the screen its watchers see
// (package oversight). Its frame readers hand it the payload (streamStats.Data) and the sizes.
type overseen struct {
	terminal *oversight.Terminal
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
	if stream == "stdout" {
		o.terminal.Output(p)
	}
}

func (o *overseen) resize(width, height int) { o.terminal.Resize(width, height) }

// endWatches ends the watches of a session that ended.
func (s *Session) endWatches() {
	if s.streams.overseen != nil {
		s.streams.overseen.terminal.End()
	}
}

// Terminal is the session's terminal as its watchers see it; nil when it has none (no TTY).
func (s *Session) Terminal() *oversight.Terminal {
	if s.streams.overseen == nil {
		return nil
	}
	return s.streams.overseen.terminal
}
