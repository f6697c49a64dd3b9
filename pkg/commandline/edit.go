package commandline

import "unicode"

// edit replays the keys typed on a line the way readline (emacs mode) and
// busybox lineedit edit it, to check the screen against. After a key whose
// effect only the shell knows (Tab completion, history recall, Meta keys),
// known is false and the line is not checked.
type edit struct {
	line    []rune
	cur     int
	known   bool
	printed bool // a key that shows on screen was typed
}

func newEdit() edit { return edit{known: true} }

func (e *edit) apply(k key, r rune) {
	switch k {
	case keyRune:
		e.printed = true
		if len(e.line) >= MaxLineBytes {
			e.known = false
			return
		}
		e.line = append(e.line, 0)
		copy(e.line[e.cur+1:], e.line[e.cur:])
		e.line[e.cur] = r
		e.cur++
	case keyBackspace:
		if e.cur > 0 {
			e.line = append(e.line[:e.cur-1], e.line[e.cur:]...)
			e.cur--
		}
	case keyKillStart:
		e.line = append(e.line[:0], e.line[e.cur:]...)
		e.cur = 0
	case keyKillWord:
		i := e.cur
		for i > 0 && unicode.IsSpace(e.line[i-1]) {
			i--
		}
		for i > 0 && !unicode.IsSpace(e.line[i-1]) {
			i--
		}
		e.line = append(e.line[:i], e.line[e.cur:]...)
		e.cur = i
	case keyKillEnd:
		e.line = e.line[:e.cur]
	case keyEOF, keyDelete:
		if e.cur < len(e.line) {
			e.line = append(e.line[:e.cur], e.line[e.cur+1:]...)
		}
	case keyHome:
		e.cur = 0
	case keyEnd:
		e.cur = len(e.line)
	case keyLeft:
		e.cur = max(e.cur-1, 0)
	case keyRight:
		e.cur = min(e.cur+1, len(e.line))
	case keyOther:
		e.known, e.printed = false, true
	}
}
