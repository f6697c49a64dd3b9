package terminal

import "unicode/utf8"

// Write feeds terminal output to the screen. It never fails; sequences it
// does not know are skipped.
func (s *Screen) Write(p []byte) (int, error) {
	for _, c := range p {
		switch s.p.state {
		case stGround:
			switch {
			case s.p.un > 0:
				s.utf8Byte(c)
			case c >= 0x20 && c < 0x7f:
				s.put(rune(c))
			case c < 0x20:
				s.control(c)
			case c >= 0x80:
				s.utf8Byte(c)
			}
		case stEsc:
			s.esc(c)
		case stEscSkip:
			s.p.state = stGround
		case stCSI:
			s.csiByte(c)
		case stString, stStringST:
			// As tmux and xterm read a string: CAN and SUB abort it, BEL ends an OSC, and an ESC
			// ends it whatever follows (ST if '\\', else the start of the next escape).
			switch {
			case c == 0x18 || c == 0x1a || (c == 0x07 && s.p.state == stString):
				s.p.state = stGround
			case c == 0x1b:
				s.p.state = stStringEsc
			}
		case stStringEsc:
			s.p.state = stGround
			if c != '\\' {
				s.esc(c)
			}
		}
	}
	return len(p), nil
}

func (s *Screen) utf8Byte(c byte) {
	if s.p.un > 0 && (c < 0x80 || c >= 0xc0) {
		// The rune was cut short: show it as invalid, then this byte.
		s.p.un = 0
		s.put(utf8.RuneError)
		if c < 0x80 {
			_, _ = s.Write([]byte{c})
			return
		}
	}
	s.p.utf[s.p.un] = c
	s.p.un++
	if !utf8.FullRune(s.p.utf[:s.p.un]) {
		return
	}
	r, _ := utf8.DecodeRune(s.p.utf[:s.p.un])
	s.p.un = 0
	s.put(r)
}

// put writes a rune at the cursor, wrapping first if the last column was
// written before.
func (s *Screen) put(r rune) {
	if r >= 0x80 && r <= 0x9f { // a C1 control, never a character: Render must not write it
		r = '?'
	}
	if s.wrapNext && !s.noWrap {
		s.x = 0
		s.linefeed()
	}
	s.wrapNext = false
	row := s.row(s.y)
	if s.insert {
		copy(row[s.x+1:], row[s.x:])
	}
	row[s.x] = r
	if s.insert && row[s.w-1] != ' ' || s.x == s.w-1 {
		s.cur.full[s.y] = true
	}
	if s.x == s.w-1 {
		s.wrapNext = true
	} else {
		s.x++
	}
}

// row returns row y, allocating it on first use.
func (s *Screen) row(y int) []rune {
	if s.cur.rows[y] == nil {
		s.cur.rows[y] = blankRow(s.w)
	}
	return s.cur.rows[y]
}

func (s *Screen) control(c byte) {
	switch c {
	case '\r':
		s.x, s.wrapNext = 0, false
	case '\n', '\v', '\f':
		s.wrapNext = false
		s.linefeed()
	case '\b':
		if s.wrapNext {
			s.wrapNext = false
		}
		if s.x > 0 {
			s.x--
		}
	case '\t':
		s.wrapNext = false
		s.x = min((s.x/8+1)*8, s.w-1)
	case 0x1b:
		s.p.state, s.p.n = stEsc, 0
	}
}

// linefeed moves down a row, scrolling at the bottom of the scroll region.
func (s *Screen) linefeed() {
	if s.y == s.bottom {
		s.scrollRegion(s.top, s.bottom, 1)
	} else if s.y < s.h-1 {
		s.y++
	}
}

// scrollRegion moves rows top+n..bottom up by n and blanks the n rows at
// the bottom. A negative n scrolls down. Row slices are reused, not
// reallocated.
func (s *Screen) scrollRegion(top, bottom, n int) {
	g := s.cur
	size := bottom - top + 1
	if n == 0 || size <= 0 {
		return
	}
	up := n > 0
	if !up {
		n = -n
	}
	n = min(n, size)
	if up && top == 0 && g == &s.main {
		s.scrolled += int64(n)
	}
	for i := 0; i < n; i++ {
		if up {
			first := g.rows[top]
			copy(g.rows[top:bottom], g.rows[top+1:bottom+1])
			copy(g.full[top:bottom], g.full[top+1:bottom+1])
			g.rows[bottom], g.full[bottom] = clearRow(first), false
		} else {
			last := g.rows[bottom]
			copy(g.rows[top+1:bottom+1], g.rows[top:bottom])
			copy(g.full[top+1:bottom+1], g.full[top:bottom])
			g.rows[top], g.full[top] = clearRow(last), false
		}
	}
}

func clearRow(r []rune) []rune {
	for i := range r {
		r[i] = ' '
	}
	return r
}

func (s *Screen) esc(c byte) {
	s.p.state = stGround
	switch c {
	case '[':
		s.p.state, s.p.n = stCSI, 0
	case ']':
		s.p.state = stString
	case 'P', 'X', '^', '_':
		s.p.state = stStringST
	case '(', ')', '*', '+', '#', '%', ' ':
		s.p.state = stEscSkip
	case '7':
		s.saved = pos{s.x, s.y}
	case '8':
		s.x, s.y, s.wrapNext = s.saved.x, s.saved.y, false
	case 'D':
		s.linefeed()
	case 'E':
		s.x = 0
		s.linefeed()
	case 'M':
		if s.y == s.top {
			s.scrollRegion(s.top, s.bottom, -1)
		} else if s.y > 0 {
			s.y--
		}
	case 'c':
		s.reset()
	case 0x1b:
		s.p.state, s.p.n = stEsc, 0
	}
}

func (s *Screen) reset() {
	s.cur = &s.main
	s.eraseRows(0, s.h)
	s.x, s.y, s.wrapNext, s.insert, s.noWrap = 0, 0, false, false, false
	s.top, s.bottom = 0, s.h-1
}

// eraseRows blanks rows [from, to) of the current grid.
func (s *Screen) eraseRows(from, to int) {
	for y := from; y < to; y++ {
		if s.cur.rows[y] != nil {
			clearRow(s.cur.rows[y])
		}
		s.cur.full[y] = false
	}
}

// erase blanks columns [from, to) of row y.
func (s *Screen) erase(y, from, to int) {
	r := s.cur.rows[y]
	if r == nil {
		return
	}
	from, to = clamp(from, 0, s.w), clamp(to, 0, s.w)
	for i := from; i < to; i++ {
		r[i] = ' '
	}
	if to == s.w {
		s.cur.full[y] = false
	}
}

func (s *Screen) csiByte(c byte) {
	switch {
	case c >= 0x40 && c <= 0x7e:
		s.p.state = stGround
		if s.p.n <= maxSeq {
			s.csi(s.p.seq[:s.p.n], c)
		}
	case c == 0x1b:
		s.p.state, s.p.n = stEsc, 0
	case c == 0x18 || c == 0x1a:
		s.p.state = stGround
	case c < 0x20:
		s.control(c) // C0 controls act inside a sequence
	default:
		if s.p.n < maxSeq {
			s.p.seq[s.p.n] = c
		}
		s.p.n = min(s.p.n+1, maxSeq+1)
	}
}
