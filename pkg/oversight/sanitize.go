package oversight

import (
	"bytes"
	"unicode/utf8"
)

// sanitizer keeps from a session's output what draws a screen and drops the rest: a watched
// session is someone else's, and its output must not query the watcher's terminal (device status,
// attributes, modes: the answer would arrive as the watcher's typing), change what the watcher's
// keys or mouse send, set its title or clipboard (OSC), or load anything into it (DCS, APC, PM,
// SOS). It reads strings and sequences as tmux and xterm do (CAN and SUB abort them, an ESC ends
// a string whatever follows), and keeps only what an allow-list names: text, BS, HT, LF, VT, FF,
// CR, BEL; ESC 7/8/D/E/M/H and charset designations; CSI sequences without intermediates that
// move the cursor, erase, edit, scroll, set tabs, colour (m), save the cursor, set insert mode
// (4h/4l) or, with '?', autowrap, blinking, the cursor's visibility and the alternate screen.
// Characters are passed only as valid UTF-8 that is not a C1 control (U+0080 to U+009F), else
// '?'. State is a few bytes; a sequence longer than maxSequence is dropped.
type sanitizer struct {
	state int
	seq   []byte // a CSI sequence's parameters, kept until its final byte decides
	char  []byte // a UTF-8 character, kept until it is whole
}

const maxSequence = 64

const (
	ground    = iota
	escape    // after ESC
	escInter  // after ESC and a charset designation's intermediate (ESC ( B)
	escDrop   // after ESC and another intermediate: dropped up to its final byte
	csi       // inside ESC [ ... until the final byte
	csiDrop   // inside a control sequence that will be dropped, until its final byte
	osc       // inside OSC, until BEL or ST
	stringST  // inside DCS, SOS, PM or APC, until ST
	stringEsc // ESC inside a string: ST if '\' follows, else the start of the next escape
)

// drawing are the final bytes of the CSI sequences without a prefix that are kept: cursor
// movement (A-H, a, d, e, f, `), erase and edit (J, K, L, M, P, X, @), scroll (S, T, r), tabs (I, Z,
// g), repeat (b), colours (m), and saving the cursor (s, u). Modes (h, l) are kept only as
// allowedModes say.
var drawing = func() (set [128]bool) {
	for _, b := range []byte("ABCDEFGHadef`JKLMPX@STrIZgbmsu") {
		set[b] = true
	}
	return set
}()

// allowedModes are the modes a watcher's terminal may be set to: insert mode (4), and with '?'
// autowrap (7), blinking (12), the cursor's visibility (25) and the alternate screen.
var allowedModes = map[string]bool{"4": true, "?7": true, "?12": true, "?25": true, "?47": true, "?1047": true, "?1048": true, "?1049": true}

// filter appends to out what of p the watchers are sent.
func (s *sanitizer) filter(out, p []byte) []byte {
	for _, b := range p {
		switch s.state {
		case ground:
			out = s.ground(out, b)
		case escape:
			out = s.escape(out, b)
		case escInter:
			s.state = ground
			if b >= 0x30 && b <= 0x7e {
				out = append(out, 0x1b, s.seq[0], b)
			}
		case escDrop:
			if b < 0x20 || b > 0x2f {
				s.state = ground
			}
		case csi:
			out = s.csi(out, b)
		case csiDrop:
			if b >= 0x40 && b <= 0x7e || b == 0x18 || b == 0x1a {
				s.state = ground
			}
		case osc, stringST:
			switch {
			case b == 0x18 || b == 0x1a || (b == 0x07 && s.state == osc):
				s.state = ground
			case b == 0x1b:
				s.state = stringEsc
			}
		case stringEsc:
			s.state = ground
			if b != '\\' {
				out = s.escape(out, b)
			}
		}
	}
	return out
}

func (s *sanitizer) ground(out []byte, b byte) []byte {
	if len(s.char) > 0 && (b < 0x80 || b >= 0xc0) { // a character cut short
		out = append(out, '?')
		s.char = s.char[:0]
	}
	switch {
	case b == 0x1b:
		s.state = escape
	case b >= 0x20 && b < 0x7f, b >= 0x07 && b <= 0x0d:
		out = append(out, b)
	case b >= 0x80:
		s.char = append(s.char, b)
		if !utf8.FullRune(s.char) {
			return out
		}
		r, _ := utf8.DecodeRune(s.char)
		if r == utf8.RuneError && !bytes.Equal(s.char, []byte("\uFFFD")) || r >= 0x80 && r <= 0x9f {
			out = append(out, '?')
		} else {
			out = append(out, s.char...)
		}
		s.char = s.char[:0]
	}
	return out // other C0 controls (ENQ asks for the answerback; SO/SI shift charsets) are dropped
}

func (s *sanitizer) escape(out []byte, b byte) []byte {
	s.state = ground
	switch {
	case b == '[':
		s.state, s.seq = csi, s.seq[:0]
	case b == ']':
		s.state = osc
	case b == 'P' || b == 'X' || b == '^' || b == '_':
		s.state = stringST
	case bytes.IndexByte([]byte("()*+-./#"), b) >= 0:
		s.state, s.seq = escInter, append(s.seq[:0], b)
	case b >= 0x20 && b <= 0x2f: // ESC % @ (leaves UTF-8), ESC SP F (8-bit controls), and the like
		s.state = escDrop
	case bytes.IndexByte([]byte("78DEMH"), b) >= 0: // save/restore the cursor, index, tab set
		out = append(out, 0x1b, b)
	case b == 0x1b:
		s.state = escape
	case b == 0x18 || b == 0x1a:
	}
	return out // others (RIS, DECID, keypad modes, charset invocations) are dropped
}

func (s *sanitizer) csi(out []byte, b byte) []byte {
	switch {
	case b >= 0x40 && b <= 0x7e: // the final byte
		s.state = ground
		if s.keep(b) {
			out = append(out, 0x1b, '[')
			out = append(out, s.seq...)
			out = append(out, b)
		}
	case b >= 0x30 && b <= 0x3f && len(s.seq) < maxSequence:
		s.seq = append(s.seq, b)
	case b == 0x18 || b == 0x1a: // aborted
		s.state = ground
	default: // an intermediate, a control inside, or too long: not one of the kept
		s.state = csiDrop
	}
	return out
}

// keep decides on a CSI sequence with parameters s.seq and final byte final.
func (s *sanitizer) keep(final byte) bool {
	if final == 'h' || final == 'l' {
		if len(s.seq) == 0 {
			return false
		}
		for _, mode := range bytes.Split(s.seq, []byte(";")) {
			if !allowedModes[string(mode)] && !(s.seq[0] == '?' && allowedModes["?"+string(mode)]) {
				return false
			}
		}
		return true
	}
	// Parameters only: a prefix (< = > ?) makes another function of the same final byte.
	for _, c := range s.seq {
		if c >= 0x3c {
			return false
		}
	}
	return drawing[final]
}
