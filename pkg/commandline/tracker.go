// Package commandline turns a TTY session's traffic into the command lines
// the shell ran, "as run": after line editing, history recall and Tab
// completion. Keys alone do not tell them (completion and history recall
// show only in the echoed output), so a Tracker models the terminal
// (package terminal) and, when Enter is typed, reads the edited line off
// the screen: from where the first key of the line was typed (the end of
// the prompt) to the end of the logical line (wrapped rows joined). It
// replays the keys too (edit) and says "high" confidence only when the
// screen agrees with them as far as they can be checked.
//
// Rules:
//   - A line typed while the terminal does not echo (stty -echo, a password
//     prompt) is emitted with Line "" and Why saying so, never with its
//     text: the Command records that a line was entered blind.
//   - Lines entered while the alternate screen is shown (vi, less, top,
//     tmux, or a shell drawing there to hide) are not read: one Command
//     with Line "" and AltScreenWhy says so, each time it is shown.
//   - Nothing is emitted for an empty line, nor for a line cancelled with
//     Ctrl-C. A line entered as the session ends is read by Close.
//   - A prompt drawn again below the line's start is taken as the line's
//     only after Tab or when the line was typed ahead; other output that
//     looks like a prompt (a background job's) leaves the line where it
//     began, read with confidence "low".
//   - A command continued at the shell's PS2 prompt (an unclosed quote, a
//     trailing backslash) is emitted once, when its last line is entered,
//     joined as bash records it with lithist (Join): newlines inside quotes
//     kept, backslash-newline removed. An unfinished compound command
//     (for/while/if, a here document) is emitted line by line.
//   - A line longer than MaxLineBytes is cut there, with confidence "low".
//
// Keys and output travel separate streams, so an Enter can reach the
// Tracker before the echo of the keys typed just before it. The line is
// therefore read at the shell's newline after Enter, once the screen shows
// the keys typed (when they can be checked), the cursor is back on the line
// and no wrapped row is half drawn; a redraw that still comes after that
// (a history recall or a completion answered late) gives a line the keys
// cannot check, emitted with the confidence its other checks allow.
//
// A Tracker cannot tell a shell's prompt from another program reading a
// line with echo (cat, read without -s): such lines are emitted too.
package commandline

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/exec-proxy/exec-proxy/pkg/terminal"
)

const (
	// MaxLineBytes bounds a command's Line.
	MaxLineBytes = 16 << 10

	// High and Low are the values of Command.Confidence.
	High = "high"
	Low  = "low"
)

// Command is one command line entered in a TTY session.
type Command struct {
	Seq        int       // from 1, in the order entered
	At         time.Time // when the line was read: at the shell's newline after Enter
	Line       string    // the line as run; "" when it could not be read
	Confidence string    // High or Low
	Why        string    // why Low, or why Line is ""
}

// line is the state of the line being typed.
type line struct {
	started  bool
	startRow int64 // row of the first key, counted from the session's start
	startX   int
	prompt   string // the screen row before startX, trailing blanks trimmed
	edit     edit
	echoed   bool // output arrived between the first key and Enter
	entered  bool // Enter typed; the line is read at the shell's newline
	// moved: the prompt may be drawn again below the line's start: Tab was typed (a list of
	// matches), or the line was typed ahead of the shell's output (the prompt came after it).
	moved      bool
	afterEnter bool     // output arrived after Enter
	why        []string // reasons for Low found while typing
}

// Tracker follows one TTY session. Feed it the session's input, output and
// resizes in the order they crossed the session; its methods may be called
// from different goroutines. emit is called with the lock held, in Seq
// order, and must not call back into the Tracker.
type Tracker struct {
	mu         sync.Mutex
	emit       func(Command)
	now        func() time.Time
	screen     *terminal.Screen
	keys       keyDecoder
	cur        line
	settled    bool     // output arrived since the last Enter or Ctrl-C
	unfinished string   // earlier lines of a command continued at PS2
	contWhy    []string // reasons for Low from those lines
	seq        int
	altNoted   bool // a line entered on the alternate screen was emitted since it was shown
}

// NewTracker returns a Tracker for a terminal of w × h cells.
func NewTracker(w, h int, emit func(Command)) *Tracker {
	return &Tracker{emit: emit, now: time.Now, screen: terminal.New(w, h), settled: true}
}

// Input feeds keys typed (the session's stdin).
func (t *Tracker) Input(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(p) > 0 {
		k, r, used, ok := t.keys.next(p)
		p = p[used:]
		if !ok || k == keyNone {
			continue
		}
		t.key(k, r)
	}
}

func (t *Tracker) key(k key, r rune) {
	if t.cur.entered {
		// The shell did not echo a newline for the last Enter (echo off):
		// read that line now, before this key changes the screen.
		settled := t.cur.afterEnter
		t.finish(false)
		t.settled = settled
	}
	if !t.cur.started {
		t.start()
	}
	switch k {
	case keyEnter:
		t.cur.entered = true
		return
	case keyInterrupt:
		t.cur, t.unfinished, t.contWhy, t.settled = line{}, "", nil, false
		return
	case keyEOF:
		if len(t.cur.edit.line) == 0 && t.cur.edit.known {
			t.cur = line{}
			return
		}
	case keyTab:
		t.cur.moved, k = true, keyOther
	}
	t.cur.edit.apply(k, r)
}

func (t *Tracker) start() {
	x, y := t.screen.Cursor()
	t.cur = line{
		started:  true,
		startRow: int64(y) + t.screen.Scrolled(),
		startX:   x,
		prompt:   strings.TrimRight(prefix(t.screen.Cells(y, 0), x), " "),
		edit:     newEdit(),
	}
	if !t.settled {
		t.cur.why = append(t.cur.why, "typed ahead of the shell's output")
		t.cur.moved = true
	}
}

// prefix returns the first n runes of s.
func prefix(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// Output feeds terminal output (the session's stdout).
func (t *Tracker) Output(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(p) == 0 {
		return
	}
	if t.cur.started && !t.cur.entered {
		t.cur.echoed = true
	}
	t.cur.afterEnter = t.cur.entered
	finished := false
	for t.cur.entered {
		// The shell ends an entered line with a newline: read the line
		// just before it, before the command's output changes the screen.
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			break
		}
		j := i
		if j > 0 && p[j-1] == '\r' {
			j-- // the newline as the pty's ONLCR turns it: CR LF
		}
		_, _ = t.screen.Write(p[:j])
		if t.echoBehind() {
			// A newline within the echo (busybox wraps a long line with
			// CR LF): the line's end is yet to come.
			_, _ = t.screen.Write(p[j : i+1])
			p = p[i+1:]
			continue
		}
		t.finish(true)
		p = p[j:]
		finished = true
	}
	_, _ = t.screen.Write(p)
	if !t.cur.started {
		// Settled once the shell wrote more than the entered line's newline.
		t.settled = !finished || len(bytes.TrimLeft(p, "\r\n")) > 0
	}
}

// echoBehind reports whether the screen does not show the whole entered
// line yet: the cursor is off it (a completion list is being drawn), a
// wrapped row is being drawn, or it shows a strict prefix of what the
// keys typed.
func (t *Tracker) echoBehind() bool {
	v := t.screenLine(t.cur)
	if !v.found {
		return false
	}
	if !v.cursorOn || v.wrapping {
		return true
	}
	want := strings.TrimRight(string(t.cur.edit.line), " ")
	return t.cur.edit.known && v.text != "" && len(v.text) < len(want) && strings.HasPrefix(want, v.text)
}

// Resize feeds a terminal size change.
func (t *Tracker) Resize(w, h int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.screen.Resize(w, h)
	const resized = "the terminal was resized while the line was typed"
	if t.cur.started && !slices.Contains(t.cur.why, resized) {
		t.cur.why = append(t.cur.why, resized)
	}
}

// finish reads the entered line off the screen and emits it, or holds it
// when the shell will continue it at PS2. atNewline: the shell's newline
// came (else the next key did, and the shell never drew a newline).
func (t *Tracker) finish(atNewline bool) {
	l := t.cur
	t.cur, t.settled = line{}, false
	if t.screen.AltScreen() {
		t.altScreenLine(l)
		return
	}
	t.altNoted = false
	text, why := t.read(l, atNewline)
	if text == "" && len(why) == 0 && t.unfinished == "" {
		return // an empty line
	}
	why = append(l.why, why...)
	if t.unfinished != "" {
		text = Join(t.unfinished, text)
		why = append(t.contWhy, why...)
		t.unfinished, t.contWhy = "", nil
	}
	if text != "" && Unfinished(text) && len(text) < MaxLineBytes {
		t.unfinished, t.contWhy = text, why
		return
	}
	if len(text) > MaxLineBytes {
		text = strings.ToValidUTF8(text[:MaxLineBytes], "")
		why = append(why, "cut at MaxLineBytes")
	}
	c := Command{Line: text, Confidence: High}
	if len(why) > 0 {
		c.Confidence, c.Why = Low, strings.Join(why, "; ")
	}
	t.seq++
	c.Seq, c.At = t.seq, t.now()
	t.emit(c)
}

// read returns the line l as the screen shows it, and reasons to doubt it.
func (t *Tracker) read(l line, atNewline bool) (string, []string) {
	const blind = "the line typed did not show on screen (echo off, e.g. a password prompt); its text is withheld"
	if !l.echoed && l.edit.printed {
		// Nothing was drawn before Enter: echo is off, unless the keys came
		// in one burst (a paste) and the shell drew them before its newline.
		v := t.screenLine(l)
		switch {
		case !atNewline || !v.found || v.text == "":
		case l.edit.known && v.text == string(l.edit.line):
			return v.text, nil
		case !l.edit.known:
			return v.text, []string{"drawn only after Enter"}
		}
		return "", []string{blind}
	}
	v := t.screenLine(l)
	if !v.found {
		return "", []string{"the line's start is no longer on screen"}
	}
	text, why := v.text, []string(nil)
	if !v.cursorOn {
		why = append(why, "the cursor was off the line at Enter")
	}
	if text == "" && l.edit.printed && (!l.edit.known || len(l.edit.line) > 0) {
		return "", []string{blind}
	}
	if typed := string(l.edit.line); l.edit.known && text != typed {
		if text == strings.TrimRight(typed, " ") {
			// Blanks typed at the end: the screen shows them only by the
			// cursor after them, the keys tell them.
			text = typed
		} else {
			why = append(why, "the screen does not show what the keys typed")
		}
	}
	return text, why
}

// view is an entered line as the screen shows it.
type view struct {
	text     string
	found    bool // the line's start is on screen
	cursorOn bool // the cursor is on the line's rows
	// The line's last row is blank, and the cursor is still on the row
	// before it: a wrapped line is being drawn (busybox ends a full row
	// with CR LF).
	wrapping bool
}

// screenLine reads l from its start to the end of its logical line (rows
// joined while one Continues the next). If a row below starts with the
// same prompt (the shell listed completions and drew its prompt again),
// the line starts there.
func (t *Tracker) screenLine(l line) view {
	s := t.screen
	cx, cy := s.Cursor()
	y0 := int(l.startRow - s.Scrolled())
	if y0 < 0 || cy < y0 {
		// Not on screen (scrolled out, or the screen was redrawn above):
		// look for the prompt on the logical line holding the cursor.
		y0 = cy
		for y0 > 0 && s.Continues(y0-1) {
			y0--
		}
		if !t.promptAt(y0, l) {
			return view{}
		}
	}
	for y := cy; l.moved && y > y0; y-- { // else a "prompt" below is other output's, not the line's
		if t.promptAt(y, l) {
			y0 = y
			break
		}
	}
	var b strings.Builder
	x, y := l.startX, y0
	for ; s.Continues(y) && b.Len() <= MaxLineBytes; y++ {
		b.WriteString(s.Cells(y, x))
		x = 0
	}
	last := s.Text(y, x)
	if cy == y && cx-x > len([]rune(last)) {
		// Blanks typed at the end show only by the cursor after them.
		last = prefix(s.Cells(y, x), cx-x)
	}
	b.WriteString(last)
	return view{
		text:     b.String(),
		found:    true,
		cursorOn: cy >= y0 && cy <= y,
		wrapping: y > y0 && cy == y-1 && last == "",
	}
}

// promptAt reports whether row y starts with l's prompt, ending at l's start.
func (t *Tracker) promptAt(y int, l line) bool {
	return strings.TrimRight(prefix(t.screen.Cells(y, 0), l.startX), " ") == l.prompt &&
		(y == 0 || !t.screen.Continues(y-1))
}

// AltScreenWhy is the Why of the Command that says lines are entered while the alternate screen is
// shown: a full-screen program (vi, less, tmux) or a shell drawing there to hide its lines. Their
// text is not read: a program there may read a password with echo off, which the screen cannot
// tell. One such Command is emitted each time the alternate screen is shown, at its first line.
const AltScreenWhy = "lines are entered while the alternate screen is shown (a full-screen program, or a shell drawing there); their text is not read"

func (t *Tracker) altScreenLine(l line) {
	if t.altNoted || !l.edit.printed {
		return
	}
	t.altNoted = true
	t.seq++
	t.emit(Command{Seq: t.seq, At: t.now(), Confidence: Low, Why: AltScreenWhy})
}

// Close reads a line entered but not read yet (its echo never settled, or the session ended right
// after Enter): the session's last command is emitted too.
func (t *Tracker) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur.entered {
		t.finish(false)
	}
}
