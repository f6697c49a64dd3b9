package terminal

// maxParams bounds the parameters read from one CSI sequence.
const maxParams = 16

// csi runs one control sequence: seq holds its parameter and intermediate
// bytes, final its final byte.
func (s *Screen) csi(seq []byte, final byte) {
	private := len(seq) > 0 && (seq[0] == '?' || seq[0] == '>' || seq[0] == '=')
	if private {
		seq = seq[1:]
	}
	var params [maxParams]int
	np := 0
	cur, have := 0, false
	for _, c := range seq {
		switch {
		case c >= '0' && c <= '9':
			cur = min(cur*10+int(c-'0'), 1<<16)
			have = true
		case c == ';' || c == ':':
			if np < maxParams {
				params[np] = cur
				np++
			}
			cur, have = 0, false
		default:
			return // intermediate bytes: nothing this model draws
		}
	}
	if (have || np > 0) && np < maxParams {
		params[np] = cur
		np++
	}
	arg := func(i, def int) int {
		if i < np && params[i] != 0 {
			return params[i]
		}
		return def
	}
	if private {
		if final == 'h' || final == 'l' {
			for i := 0; i < max(np, 1); i++ {
				s.privateMode(params[i], final == 'h')
			}
		}
		return
	}
	n := arg(0, 1)
	switch final {
	case 'A':
		s.moveTo(s.x, max(s.y-n, s.minRow()))
	case 'B', 'e':
		s.moveTo(s.x, min(s.y+n, s.maxRow()))
	case 'C', 'a':
		s.moveTo(s.x+n, s.y)
	case 'D':
		s.moveTo(s.x-n, s.y)
	case 'E':
		s.moveTo(0, min(s.y+n, s.maxRow()))
	case 'F':
		s.moveTo(0, max(s.y-n, s.minRow()))
	case 'G', '`':
		s.moveTo(n-1, s.y)
	case 'd':
		s.moveTo(s.x, n-1)
	case 'H', 'f':
		s.moveTo(arg(1, 1)-1, n-1)
	case 'K':
		switch arg(0, 0) {
		case 0:
			s.erase(s.y, s.x, s.w)
		case 1:
			s.erase(s.y, 0, s.x+1)
		case 2:
			s.erase(s.y, 0, s.w)
		}
	case 'J':
		switch arg(0, 0) {
		case 0:
			s.erase(s.y, s.x, s.w)
			s.eraseRows(s.y+1, s.h)
		case 1:
			s.eraseRows(0, s.y)
			s.erase(s.y, 0, s.x+1)
		case 2, 3:
			s.eraseRows(0, s.h)
		}
	case 'X':
		s.erase(s.y, s.x, s.x+n)
	case '@':
		if r := s.cur.rows[s.y]; r != nil {
			n = min(n, s.w-s.x)
			copy(r[s.x+n:], r[s.x:])
			clearRow(r[s.x : s.x+n])
		}
		s.wrapNext = false
	case 'P':
		if r := s.cur.rows[s.y]; r != nil {
			n = min(n, s.w-s.x)
			copy(r[s.x:], r[s.x+n:])
			clearRow(r[s.w-n:])
		}
		s.wrapNext = false
	case 'L', 'M':
		if s.y >= s.top && s.y <= s.bottom {
			if final == 'L' {
				n = -n
			}
			s.scrollRegion(s.y, s.bottom, n)
			s.x, s.wrapNext = 0, false
		}
	case 'S':
		s.scrollRegion(s.top, s.bottom, n)
	case 'T':
		s.scrollRegion(s.top, s.bottom, -n)
	case 'r':
		top, bottom := arg(0, 1)-1, arg(1, s.h)-1
		if top < bottom && bottom < s.h {
			s.top, s.bottom = top, bottom
			s.moveTo(0, 0)
		}
	case 'h', 'l':
		for i := 0; i < np; i++ {
			if params[i] == 4 {
				s.insert = final == 'h'
			}
		}
	case 's':
		s.saved = pos{s.x, s.y}
	case 'u':
		s.moveTo(s.saved.x, s.saved.y)
	}
}

// minRow and maxRow bound vertical cursor moves: the scroll region when
// the cursor is inside it, else the screen.
func (s *Screen) minRow() int {
	if s.y >= s.top {
		return s.top
	}
	return 0
}

func (s *Screen) maxRow() int {
	if s.y <= s.bottom {
		return s.bottom
	}
	return s.h - 1
}

func (s *Screen) moveTo(x, y int) {
	s.x, s.y, s.wrapNext = clamp(x, 0, s.w-1), clamp(y, 0, s.h-1), false
}

func (s *Screen) privateMode(mode int, set bool) {
	switch mode {
	case 7:
		s.noWrap = !set
	case 1049, 1047, 47:
		if set == (s.cur == &s.alt) {
			return
		}
		if set {
			if mode == 1049 {
				s.saved = pos{s.x, s.y}
			}
			s.cur = &s.alt
			s.eraseRows(0, s.h)
		} else {
			s.cur = &s.main
			if mode == 1049 {
				s.x, s.y = s.saved.x, s.saved.y
			}
		}
		s.wrapNext = false
	}
}
