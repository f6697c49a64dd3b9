package oversight

// sanitizer keeps from a session's output what draws a screen and drops what would make a
// watcher's terminal answer, or act beyond its screen: a watched session is someone else's, and
// its output must not query the watcher's terminal (device status, attributes: the answer would
// arrive as the watcher's typing), set its title or clipboard (OSC), or load anything into it
// (DCS, APC, PM, SOS). Control sequences are kept only if their final byte is in drawing, a
// list of what moves the cursor, erases, scrolls, colours and sets modes. Bytes that are not
// UTF-8 become '?', so that no stray byte reads as an 8-bit C1 control. State is a few bytes;
// a control sequence longer than maxSequence is dropped.
type sanitizer struct {
	state    int
	seq      []byte // a control sequence kept until its final byte tells whether it draws
	utf8Left int    // continuation bytes the current UTF-8 character still needs
	// heldC2: a 0xc2 lead byte waits for the next byte, since U+0080 to U+009F (0xc2 0x80 to
	// 0xc2 0x9f) are the C1 controls again, which terminals act on in UTF-8 too.
	heldC2 bool
}

const maxSequence = 64

const (
	ground   = iota
	escape   // after ESC
	escInter // after ESC and an intermediate byte (charset designation: ESC ( B)
	csi      // inside ESC [ ... until the final byte
	csiDrop  // inside a control sequence too long to keep, until its final byte
	str      // inside OSC, DCS, SOS, PM or APC, until BEL or ST
	strEsc   // ESC inside a string: ST if '\' follows
)

// drawing are the final bytes of the control sequences a watcher's terminal is sent: cursor
// movement (A-H, a, d, e, f, `), erase and edit (J, K, L, M, P, X, @), scroll (S, T, r), tabs (I, Z,
// g), repeat (b), colours (m), modes (h, l: the alternate screen, the cursor's visibility), and
// saving the cursor (s, u). Not: n (device status), c (device attributes), t (window operations),
// x, q, p, y, or anything else that asks the terminal something or changes it beyond its screen.
var drawing = func() (set [128]bool) {
	for _, b := range []byte("ABCDEFGHadef`JKLMPX@STrIZgbmhlsu") {
		set[b] = true
	}
	return set
}()

// filter appends to out what of p the watchers are sent.
func (s *sanitizer) filter(out, p []byte) []byte {
	for _, b := range p {
		switch s.state {
		case ground:
			out = s.ground(out, b)
		case escape:
			out = s.escape(out, b)
		case escInter:
			if b >= 0x20 && b <= 0x2f {
				continue // more intermediates
			}
			s.state = ground
			if b >= 0x30 && b <= 0x7e {
				out = append(out, 0x1b)
				out = append(out, s.seq...)
				out = append(out, b)
			}
			s.seq = s.seq[:0]
		case csi:
			out = s.csi(out, b)
		case csiDrop:
			if b >= 0x40 && b <= 0x7e {
				s.state = ground
			}
		case str:
			switch b {
			case 0x07:
				s.state = ground
			case 0x1b:
				s.state = strEsc
			}
		case strEsc:
			s.state = str
			if b == '\\' {
				s.state = ground
			}
		}
	}
	return out
}

func (s *sanitizer) ground(out []byte, b byte) []byte {
	if s.heldC2 {
		s.heldC2 = false
		switch {
		case b >= 0x80 && b <= 0x9f:
			s.utf8Left = 0
			return append(out, '?')
		case b >= 0xa0 && b <= 0xbf:
			s.utf8Left = 0
			return append(out, 0xc2, b)
		}
		out = append(out, 0xc2) // cut short: the terminal's to show as such
		s.utf8Left = 0
	}
	switch {
	case b == 0x1b:
		s.utf8Left = 0
		s.state = escape
		return out
	case b < 0x80:
		s.utf8Left = 0 // a character cut short is the terminal's to show as such
		return append(out, b)
	case b < 0xc0: // a continuation byte
		if s.utf8Left == 0 {
			return append(out, '?')
		}
		s.utf8Left--
		return append(out, b)
	case b == 0xc2:
		s.heldC2 = true
		return out
	case b >= 0xc3 && b <= 0xdf:
		s.utf8Left = 1
	case b >= 0xe0 && b <= 0xef:
		s.utf8Left = 2
	case b >= 0xf0 && b <= 0xf4:
		s.utf8Left = 3
	default: // 0xc0, 0xc1, 0xf5-0xff are never UTF-8
		s.utf8Left = 0
		return append(out, '?')
	}
	return append(out, b)
}

func (s *sanitizer) escape(out []byte, b byte) []byte {
	s.state = ground
	switch {
	case b == '[':
		s.state, s.seq = csi, append(s.seq[:0], 0x1b, '[')
	case b == ']' || b == 'P' || b == 'X' || b == '^' || b == '_':
		s.state = str
	case b >= 0x20 && b <= 0x2f:
		s.state, s.seq = escInter, append(s.seq[:0], b)
	case b == 'Z': // DECID: asks the terminal to identify itself
	case b >= 0x30 && b <= 0x7e: // save/restore cursor, index, keypad modes, reset
		out = append(out, 0x1b, b)
	case b == 0x1b:
		s.state = escape
	}
	return out
}

func (s *sanitizer) csi(out []byte, b byte) []byte {
	switch {
	case b >= 0x40 && b <= 0x7e: // the final byte
		s.state = ground
		if drawing[b] && !hasIntermediate(s.seq[2:]) {
			out = append(out, s.seq...)
			out = append(out, b)
		}
		s.seq = s.seq[:0]
	case b >= 0x20 && b <= 0x3f:
		if len(s.seq) >= maxSequence {
			s.state, s.seq = csiDrop, s.seq[:0]
			return out
		}
		s.seq = append(s.seq, b)
	default: // a control inside a sequence: xterm acts on it and goes on; dropping the sequence is safer
		s.state, s.seq = ground, s.seq[:0]
	}
	return out
}

// hasIntermediate: a sequence with intermediate bytes (CSI Ps SP q, CSI ? Ps $ p) is another
// function than its final byte alone names.
func hasIntermediate(params []byte) bool {
	for _, b := range params {
		if b >= 0x20 && b <= 0x2f {
			return true
		}
	}
	return false
}
