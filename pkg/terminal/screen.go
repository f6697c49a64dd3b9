// Package terminal is a bounded model of a VT100/xterm screen, fed a
// session's terminal output. It keeps what a terminal would show (the text
// of each row, the cursor, the alternate screen), not colours or
// attributes, so that commandline can read the line a user edited and a
// watcher can be shown what is already on screen (Render).
//
// It understands printable UTF-8 (one cell per rune: wide characters take
// one cell here), CR, LF, BS, TAB, the CSI sequences bash's readline and
// busybox's lineedit use (cursor moves A/B/C/D/E/F/G/H/d, erase K/J/X,
// insert/delete characters @/P and lines L/M, scroll S/T and the scroll
// region r, insert mode 4h/4l), auto-wrap at the width (?7h/?7l), and the
// alternate screen (?1049h, ?1047h, ?47h). OSC, DCS, SOS, PM and APC strings
// and SGR are skipped.
//
// Bounds: the width is clamped to [1, MaxWidth] and the height to
// [1, MaxHeight]; a row is allocated only once something is written to it;
// an escape sequence longer than maxSeq bytes is dropped. The worst case is
// therefore two full grids (main and alternate) of 4-byte cells plus a flag
// per row: 2 × (320 × 128 × 4 + 128) bytes ≈ 320 KiB, plus maxSeq bytes of
// pending sequence. An 80×24 screen holds at most 2 × 80 × 24 × 4 ≈ 15 KiB.
package terminal

import (
	"strconv"
	"unicode/utf8"
)

const (
	// MaxWidth and MaxHeight bound the screen's size in cells.
	MaxWidth  = 320
	MaxHeight = 128
	// maxSeq bounds a pending escape sequence; a longer one is dropped.
	maxSeq = 256
)

// grid is one screen buffer: the main or the alternate screen.
type grid struct {
	rows [][]rune // nil until written; else len == width
	full []bool   // row y's last column was written (see Continues)
}

// parser is the escape-sequence state between two Write calls.
type parser struct {
	state int
	seq   [maxSeq]byte // a CSI's parameters and intermediates
	n     int          // bytes in seq; > maxSeq once overflowed
	utf   [utf8.UTFMax]byte
	un    int // bytes of a partial UTF-8 rune in utf
}

const (
	stGround = iota
	stEsc
	stEscSkip // ESC ( B and alike: one more byte
	stCSI
	stString    // OSC: up to BEL or ST
	stStringST  // DCS, SOS, PM, APC: up to ST only
	stStringEsc // ESC seen inside a string
)

type pos struct{ x, y int }

// Screen is the model. It is not safe for concurrent use.
type Screen struct {
	w, h        int
	main, alt   grid
	cur         *grid
	x, y        int
	wrapNext    bool  // the last column was written; the next rune wraps
	insert      bool  // IRM (CSI 4 h)
	noWrap      bool  // DECAWM reset (CSI ?7 l)
	saved       pos   // ESC 7, CSI s, ?1049h
	top, bottom int   // scroll region, inclusive rows
	scrolled    int64 // rows scrolled off the top of the main screen
	p           parser
}

// New returns a blank screen of w × h cells (clamped to the bounds).
func New(w, h int) *Screen {
	s := &Screen{}
	s.cur = &s.main
	s.Resize(w, h)
	return s
}

func clamp(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// Resize changes the size, keeping the text that still fits. When the
// height shrinks below the cursor, the top rows scroll off, as xterm does.
func (s *Screen) Resize(w, h int) {
	w, h = clamp(w, 1, MaxWidth), clamp(h, 1, MaxHeight)
	if w == s.w && h == s.h {
		return
	}
	if s.h > 0 && s.y >= h {
		n := s.y - h + 1
		s.scrollRegion(0, s.h-1, n)
		s.y -= n
	}
	for _, g := range []*grid{&s.main, &s.alt} {
		rows := make([][]rune, h)
		full := make([]bool, h)
		for y := 0; y < h && y < len(g.rows); y++ {
			full[y] = g.full[y]
			if g.rows[y] == nil {
				continue
			}
			if w == s.w {
				rows[y] = g.rows[y]
				continue
			}
			r := blankRow(w)
			copy(r, g.rows[y])
			rows[y] = r
		}
		g.rows, g.full = rows, full
	}
	s.w, s.h = w, h
	s.top, s.bottom = 0, h-1
	s.x, s.y = clamp(s.x, 0, w-1), clamp(s.y, 0, h-1)
	s.saved = pos{clamp(s.saved.x, 0, w-1), clamp(s.saved.y, 0, h-1)}
	s.wrapNext = false
}

func blankRow(w int) []rune {
	r := make([]rune, w)
	for i := range r {
		r[i] = ' '
	}
	return r
}

// Size returns the width and height in cells.
func (s *Screen) Size() (w, h int) { return s.w, s.h }

// Cursor returns the cursor's column and row, from 0.
func (s *Screen) Cursor() (x, y int) { return s.x, s.y }

// AltScreen reports whether the alternate screen is shown (vi, less, top).
func (s *Screen) AltScreen() bool { return s.cur == &s.alt }

// Scrolled returns how many rows have scrolled off the top of the main
// screen so far, so that a caller can follow a row as it moves up:
// row y now is row y+Scrolled() counted from the session's start.
func (s *Screen) Scrolled() int64 { return s.scrolled }

// Text returns row y from column x to its end, trailing blanks trimmed.
func (s *Screen) Text(y, x int) string {
	if y < 0 || y >= s.h || x >= s.w {
		return ""
	}
	r := s.cur.rows[y]
	if r == nil {
		return ""
	}
	x = max(x, 0)
	end := len(r)
	for end > x && r[end-1] == ' ' {
		end--
	}
	return string(r[x:end])
}

// Continues reports whether row y's text may go on at the start of row
// y+1: its last column was written since it was last erased, so the text
// wrapped, or busybox ended the full row with CR LF (it does not rely on
// auto-wrap). A row of output exactly as wide as the screen counts too.
// For the bottom row, the row that goes on is the one yet to scroll in.
func (s *Screen) Continues(y int) bool {
	return y >= 0 && y < s.h && s.cur.full[y]
}

// Render returns bytes that redraw the current screen on a fresh terminal
// of the same size: clear, each row's text, then the cursor.
func (s *Screen) Render() []byte {
	b := make([]byte, 0, 16+s.h*(s.w+10))
	b = append(b, "\x1b[H\x1b[2J"...)
	for y := 0; y < s.h; y++ {
		t := s.Text(y, 0)
		if t == "" {
			continue
		}
		b = appendCUP(b, y, 0)
		b = append(b, t...)
	}
	b = appendCUP(b, s.y, s.x)
	if s.insert {
		b = append(b, "\x1b[4h"...)
	}
	return b
}

func appendCUP(b []byte, y, x int) []byte {
	b = append(b, "\x1b["...)
	b = strconv.AppendInt(b, int64(y+1), 10)
	b = append(b, ';')
	b = strconv.AppendInt(b, int64(x+1), 10)
	return append(b, 'H')
}

// Cells returns row y from column x to the last column, blanks kept.
func (s *Screen) Cells(y, x int) string {
	if y < 0 || y >= s.h || x >= s.w {
		return ""
	}
	x = max(x, 0)
	if s.cur.rows[y] == nil {
		return string(blankRow(s.w - x))
	}
	return string(s.cur.rows[y][x:])
}
