package terminal

import (
	"bytes"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name   string
		w, h   int
		in     string
		rows   []string // rows 0.. of the screen, trailing blanks trimmed
		x, y   int
		alt    bool
		contin int // a row that Continues, or -1
	}{
		{"text and CRLF", 20, 4, "$ ls\r\na b\r\n$ ", []string{"$ ls", "a b", "$"}, 2, 2, false, -1},
		{"backspace redraw", 20, 4, "$ lx\b \bs", []string{"$ ls"}, 4, 0, false, -1},
		{"erase line", 20, 4, "$ hello\r$ \x1b[K", []string{"$"}, 2, 0, false, -1},
		{"cursor left then insert chars", 20, 4, "$ ecoh\x1b[2D\x1b[1@h", []string{"$ echoh"}, 5, 0, false, -1},
		{"insert mode", 20, 4, "$ eho\x1b[2D\x1b[4hc\x1b[4l", []string{"$ echo"}, 4, 0, false, -1},
		{"delete chars", 20, 4, "$ echxo\x1b[2D\x1b[P", []string{"$ echo"}, 5, 0, false, -1},
		{"auto-wrap", 5, 3, "abcdefg", []string{"abcde", "fg"}, 2, 1, false, 0},
		{"pending wrap then CR stays", 5, 3, "abcde\r", []string{"abcde"}, 0, 0, false, 0},
		{"scroll", 5, 2, "a\r\nb\r\nc", []string{"b", "c"}, 1, 1, false, -1},
		{"full bottom row continues", 5, 2, "a\r\nbcdef", []string{"a", "bcdef"}, 4, 1, false, 1},
		{"CUP and erase screen", 10, 3, "xx\r\nyy\x1b[2J\x1b[2;3Hz", []string{"", "  z"}, 3, 1, false, -1},
		{"osc title skipped", 20, 2, "\x1b]0;title\x07$ \x1b]2;t\x1b\\x", []string{"$ x"}, 3, 0, false, -1},
		{"an ESC ends an OSC and starts the next escape", 20, 2, "\x1b]0;x\x1b[m$ ls", []string{"$ ls"}, 4, 0, false, -1},
		{"CAN and SUB abort a string", 20, 2, "\x1b]0;x\x18a\x1bPq\x1ab", []string{"ab"}, 2, 0, false, -1},
		{"BEL does not end a DCS", 20, 2, "\x1bPq\x07hidden\x1b\\shown", []string{"shown"}, 5, 0, false, -1},
		{"C1 controls in UTF-8 are no characters", 20, 2, "a\xc2\x9b6n\xc2\x9d", []string{"a?6n?"}, 5, 0, false, -1},
		{"bracketed paste mode ignored", 20, 2, "\x1b[?2004h$ \x1b[?2004l", []string{"$"}, 2, 0, false, -1},
		{"alternate screen", 10, 3, "$ vi\r\n\x1b[?1049h\x1b[Hfile", []string{"file"}, 4, 0, true, -1},
		{"alternate screen left", 10, 3, "$ vi\r\n\x1b[?1049h\x1b[Hfile\x1b[?1049l", []string{"$ vi"}, 0, 1, false, -1},
		{"utf-8", 10, 2, "é€\xe2\x82", []string{"é€"}, 2, 0, false, -1},
		{"utf-8 cut short", 10, 2, "\xe2\x82a", []string{"\uFFFDa"}, 2, 0, false, -1},
		{"tab", 20, 2, "a\tb", []string{"a       b"}, 9, 0, false, -1},
		{"overlong sequence dropped", 20, 2, "\x1b[" + strings.Repeat("1", 300) + "Cx", []string{"x"}, 1, 0, false, -1},
		{"scroll region", 5, 4, "a\r\nb\r\nc\r\nd\x1b[2;3r\x1b[3;1H\n", []string{"a", "c", "", "d"}, 0, 2, false, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.w, tt.h)
			_, _ = s.Write([]byte(tt.in))
			for y := 0; y < tt.h; y++ {
				want := ""
				if y < len(tt.rows) {
					want = tt.rows[y]
				}
				if got := s.Text(y, 0); got != want {
					t.Errorf("row %d = %q, want %q", y, got, want)
				}
				if got := s.Continues(y); got != (y == tt.contin) {
					t.Errorf("Continues(%d) = %v", y, got)
				}
			}
			if x, y := s.Cursor(); x != tt.x || y != tt.y {
				t.Errorf("cursor = %d,%d, want %d,%d", x, y, tt.x, tt.y)
			}
			if s.AltScreen() != tt.alt {
				t.Errorf("AltScreen = %v", s.AltScreen())
			}
		})
	}
}

func TestScrolledAndResize(t *testing.T) {
	s := New(10, 3)
	_, _ = s.Write([]byte("1\r\n2\r\n3\r\n4\r\n5"))
	if s.Scrolled() != 2 {
		t.Fatalf("Scrolled = %d, want 2", s.Scrolled())
	}
	s.Resize(4, 2)
	if got := s.Text(1, 0); got != "5" || s.Scrolled() != 3 {
		t.Fatalf("after resize row 1 = %q, Scrolled = %d", got, s.Scrolled())
	}
	s.Resize(100000, -5)
	if w, h := s.Size(); w != MaxWidth || h != 1 {
		t.Fatalf("Size = %d,%d, want clamped", w, h)
	}
}

// TestRender: the rendered bytes, fed to a fresh screen, give the same
// rows and cursor.
func TestRender(t *testing.T) {
	s := New(12, 4)
	_, _ = s.Write([]byte("$ echo hello world\r\nhello world\r\n$ ls\x1b[D"))
	fresh := New(12, 4)
	_, _ = fresh.Write(s.Render())
	for y := 0; y < 4; y++ {
		if a, b := s.Text(y, 0), fresh.Text(y, 0); a != b {
			t.Errorf("row %d: %q, rendered %q", y, a, b)
		}
	}
	ax, ay := s.Cursor()
	bx, by := fresh.Cursor()
	if ax != bx || ay != by {
		t.Errorf("cursor %d,%d, rendered %d,%d", ax, ay, bx, by)
	}
}

func FuzzScreen(f *testing.F) {
	f.Add([]byte("$ ls\r\n\x1b[?1049h\x1b[2J\x1b[5;5Hx\x1b[?1049l\x1b[3@\x1b[2P"), uint8(80), uint8(24))
	f.Add([]byte("\x1b[1;200r\x1b[99L\x1b[99M\x1b[99S\x1b[99T\xff\xfe"), uint8(3), uint8(2))
	f.Fuzz(func(t *testing.T, p []byte, w, h uint8) {
		s := New(int(w), int(h))
		half := len(p) / 2
		_, _ = s.Write(p[:half])
		s.Resize(int(h), int(w))
		_, _ = s.Write(p[half:])
		sw, sh := s.Size()
		x, y := s.Cursor()
		if x < 0 || x >= sw || y < 0 || y >= sh || sw > MaxWidth || sh > MaxHeight {
			t.Fatalf("cursor %d,%d outside %dx%d", x, y, sw, sh)
		}
		for _, g := range []*grid{&s.main, &s.alt} {
			if len(g.rows) != sh {
				t.Fatalf("%d rows, height %d", len(g.rows), sh)
			}
			for _, r := range g.rows {
				if r != nil && len(r) != sw {
					t.Fatalf("row of %d cells, width %d", len(r), sw)
				}
			}
		}
		_ = s.Render()
	})
}

func BenchmarkWrite(b *testing.B) {
	var out bytes.Buffer
	for i := 0; out.Len() < 1<<20; i++ {
		out.WriteString("-rw-r--r-- 1 root root  4096 Dec  6 09:17 \x1b[01;34mfile-")
		out.WriteString(strings.Repeat("é", i%7))
		out.WriteString("\x1b[0m\r\n")
	}
	s := New(80, 24)
	b.SetBytes(int64(out.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _ = s.Write(out.Bytes())
	}
}
