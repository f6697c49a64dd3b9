package oversight

import (
	"sync/atomic"

	"github.com/exec-proxy/exec-proxy/pkg/commandline"
	"github.com/exec-proxy/exec-proxy/pkg/terminal"
)

// Tap hears a TTY session's terminal besides its recording: the screen its watchers see and the
// command lines typed (package commandline). The session's frame readers hand it the payload and
// the sizes.
type Tap struct {
	terminal *Terminal
	// commands, set as the session starts when its commands are recorded, reads the command lines.
	commands atomic.Pointer[commandline.Tracker]
	// moderation is who moderates the session, when a rule requires it (nil: none).
	moderation *Moderation
}

// The size a screen has until the client sends one, as asciicast's default.
const defaultWidth, defaultHeight = 80, 24

// NewTap is the tap of a TTY session, its screen at the default size; m is its moderation (nil:
// none).
func NewTap(m *Moderation) *Tap {
	return &Tap{terminal: New(terminal.New(defaultWidth, defaultHeight)), moderation: m}
}

// Moderation is who moderates the session; nil when no rule requires it, or for a nil Tap.
func (t *Tap) Moderation() *Moderation {
	if t == nil {
		return nil
	}
	return t.moderation
}

// Terminal is the session's terminal as its watchers see it; nil for a nil Tap (no TTY).
func (t *Tap) Terminal() *Terminal {
	if t == nil {
		return nil
	}
	return t.terminal
}

// Data is payload of stream: the output goes to the screen, both directions to the commands.
func (t *Tap) Data(stream string, p []byte) {
	c := t.commands.Load()
	switch stream {
	case "stdout":
		t.terminal.Output(p)
		if c != nil {
			c.Output(p)
		}
	case "stdin":
		if c != nil {
			c.Input(p)
		}
	}
}

// Wants tells whether stream's bytes are read: the output always, the input for the commands.
func (t *Tap) Wants(stream string) bool {
	return stream == "stdout" || (stream == "stdin" && t.commands.Load() != nil)
}

// Resize is a terminal size the client sent.
func (t *Tap) Resize(width, height int) {
	t.terminal.Resize(width, height)
	if c := t.commands.Load(); c != nil {
		c.Resize(width, height)
	}
}

// StartCommands reads the command lines typed from now on, handing each to emit.
func (t *Tap) StartCommands(emit func(commandline.Command)) {
	t.commands.Store(commandline.NewTracker(defaultWidth, defaultHeight, emit))
}

// Close reads a command line entered as the session ends (commandline.Tracker.Close): call it
// once the session's frames are no longer read, before its end is recorded.
func (t *Tap) Close() {
	if t == nil {
		return
	}
	if c := t.commands.Load(); c != nil {
		c.Close()
	}
}
