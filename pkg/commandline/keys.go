package commandline

import "unicode/utf8"

// key is one key typed, as the line editors (readline in emacs mode,
// busybox lineedit) act on it.
type key int

const (
	keyNone      key = iota // bytes of no effect on the line (bracketed paste marks)
	keyRune                 // a printable character
	keyEnter                // CR or LF
	keyBackspace            // DEL or BS
	keyKillStart            // Ctrl-U: delete from the start to the cursor
	keyKillWord             // Ctrl-W: delete the word before the cursor
	keyKillEnd              // Ctrl-K: delete from the cursor to the end
	keyInterrupt            // Ctrl-C
	keyEOF                  // Ctrl-D: end of input on an empty line, else delete
	keyHome                 // Ctrl-A, Home
	keyEnd                  // Ctrl-E, End
	keyLeft                 // Ctrl-B, Left
	keyRight                // Ctrl-F, Right
	keyDelete               // Delete
	keyTab                  // Tab: completion, which may list matches and draw the prompt again below
	keyOther                // anything else: Up, Down, Ctrl-R, Meta keys...
)

// maxKeySeq bounds a pending escape sequence typed.
const maxKeySeq = 16

// keyDecoder splits input into keys, keeping an escape sequence or a
// UTF-8 rune cut between two Input calls.
type keyDecoder struct {
	pend [maxKeySeq]byte
	n    int
}

// next decodes one key from the front of p, after any pending bytes. It
// returns the bytes consumed; with ok false, the bytes are kept pending.
func (d *keyDecoder) next(p []byte) (k key, r rune, used int, ok bool) {
	if d.n == 0 {
		k, r, used, ok = decode(p)
		if ok {
			return k, r, used, true
		}
	}
	// Join the pending bytes with the front of p, bounded.
	take := min(len(p), maxKeySeq-d.n)
	var buf [maxKeySeq]byte
	copy(buf[:], d.pend[:d.n])
	copy(buf[d.n:], p[:take])
	k, r, used, ok = decode(buf[:d.n+take])
	if !ok {
		if d.n+take == maxKeySeq {
			// Too long to be a key: drop it as unknown.
			d.n = 0
			return keyOther, 0, take, true
		}
		copy(d.pend[d.n:], p[:take])
		d.n += take
		return keyNone, 0, take, false
	}
	if used <= d.n {
		// The key ended within the pending bytes (an invalid rune): keep
		// the rest pending.
		d.n = copy(d.pend[:], d.pend[used:d.n])
		return k, r, 0, true
	}
	used -= d.n
	d.n = 0
	return k, r, used, true
}

// decode decodes the key at the front of p; ok false means p holds only
// its beginning.
func decode(p []byte) (k key, r rune, used int, ok bool) {
	if len(p) == 0 {
		return keyNone, 0, 0, false
	}
	c := p[0]
	switch c {
	case '\r', '\n':
		return keyEnter, 0, 1, true
	case '\t':
		return keyTab, 0, 1, true
	case 0x7f, 0x08:
		return keyBackspace, 0, 1, true
	case 0x15:
		return keyKillStart, 0, 1, true
	case 0x17:
		return keyKillWord, 0, 1, true
	case 0x0b:
		return keyKillEnd, 0, 1, true
	case 0x03:
		return keyInterrupt, 0, 1, true
	case 0x04:
		return keyEOF, 0, 1, true
	case 0x01:
		return keyHome, 0, 1, true
	case 0x05:
		return keyEnd, 0, 1, true
	case 0x02:
		return keyLeft, 0, 1, true
	case 0x06:
		return keyRight, 0, 1, true
	case 0x1b:
		return decodeEscape(p)
	}
	if c < 0x20 {
		return keyOther, 0, 1, true
	}
	if c < 0x80 {
		return keyRune, rune(c), 1, true
	}
	if !utf8.FullRune(p) {
		return keyNone, 0, 0, false
	}
	r, size := utf8.DecodeRune(p)
	return keyRune, r, size, true
}

func decodeEscape(p []byte) (key, rune, int, bool) {
	if len(p) < 2 {
		return keyNone, 0, 0, false
	}
	switch p[1] {
	case 'O': // SS3: application cursor keys
		if len(p) < 3 {
			return keyNone, 0, 0, false
		}
		return arrow(p[2], ""), 0, 3, true
	case '[':
		for i := 2; i < len(p); i++ {
			if p[i] >= 0x40 && p[i] <= 0x7e {
				return arrow(p[i], string(p[2:i])), 0, i + 1, true
			}
		}
		return keyNone, 0, 0, false
	}
	return keyOther, 0, 2, true // Meta-key
}

func arrow(final byte, params string) key {
	switch final {
	case 'C':
		return keyRight
	case 'D':
		return keyLeft
	case 'H':
		return keyHome
	case 'F':
		return keyEnd
	case '~':
		switch params {
		case "1", "7":
			return keyHome
		case "4", "8":
			return keyEnd
		case "3":
			return keyDelete
		case "200", "201":
			return keyNone
		}
	case 'R': // the terminal's cursor position report, not a key
		return keyNone
	}
	return keyOther
}
