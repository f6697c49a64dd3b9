package sessionaudit

import (
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A command line typed in a TTY session (package commandline reads them off its terminal) is a
// record of its own: the session's fields, and the line.
const (
	recordCommand = "command"
	// AnnotationCommandLine is the line as the shell ran it; AnnotationCommand is the session's argv.
	AnnotationCommandLine = prefix + "command-line"
	AnnotationSequence    = prefix + "sequence"
	AnnotationTime        = prefix + "time"
	// AnnotationConfidence is "high" or "low"; AnnotationConfidenceReason says why it is low, or
	// why the line is empty (typed while the terminal did not echo: never its text).
	AnnotationConfidence       = prefix + "confidence"
	AnnotationConfidenceReason = prefix + "confidence-reason"
)

// TypedCommand is one command line entered in a session's terminal.
type TypedCommand struct {
	Seq        int
	At         time.Time
	Line       string
	Confidence string
	Why        string
}

// Command writes the record of a command line typed in the session of a. It reports whether the
// record was written: under fail-closed, a session whose commands cannot be recorded is ended by
// the caller, as one whose start could not be.
func (r *Auditor) Command(a *Attempt, c TypedCommand) bool {
	if r == nil || a == nil {
		return true
	}
	rec := a.Snapshot()
	ev := event(recordStart, rec)
	ev.StageTimestamp = metav1.NewMicroTime(c.At)
	ev.Annotations[AnnotationRecord] = recordCommand
	ev.Annotations[AnnotationCommandLine] = c.Line
	ev.Annotations[AnnotationSequence] = strconv.Itoa(c.Seq)
	ev.Annotations[AnnotationTime] = c.At.UTC().Format(timeFormat)
	ev.Annotations[AnnotationConfidence] = c.Confidence
	if c.Why != "" {
		ev.Annotations[AnnotationConfidenceReason] = c.Why
	}
	return r.sendEvent(recordCommand, ev, rec.User.Username) || r.policy == FailOpen
}
