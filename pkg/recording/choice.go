package recording

import "github.com/exec-proxy/exec-proxy/pkg/session"

// What a session policy rule records.
const (
	RecordAll  = "all"  // every exec and attach session
	RecordTTY  = "tty"  // sessions with a terminal
	RecordNone = "none" // nothing
)

// Choice is what a session policy rule says of recording, in place of the flags.
type Choice struct {
	Record string `json:"record"`          // all, tty or none
	Stdin  *bool  `json:"stdin,omitempty"` // record input too; unset: --record-stdin
}

// Decide says whether s is recorded, and whether with its input: as rule says, when a session
// policy rule matched s and says, else as the flags say.
func (c Config) Decide(s Session, rule *Choice) (record, stdin bool) {
	if c.Dir == "" || s.Kind == session.KindPortForward {
		return false, false
	}
	what, stdin := RecordTTY, c.Stdin
	if c.NonTTY {
		what = RecordAll
	}
	if rule != nil {
		what = rule.Record
		if rule.Stdin != nil {
			stdin = *rule.Stdin
		}
	}
	return what == RecordAll || (what == RecordTTY && s.TTY), stdin
}
