package oversight

import (
	"bytes"
	"testing"
)

func TestSanitizer(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"text and newlines", "ls -l\r\nfile\r\n", "ls -l\r\nfile\r\n"},
		{"UTF-8", "héllo ✓ 😀", "héllo ✓ 😀"},
		{"colours and cursor moves", "\x1b[1;31mred\x1b[0m\x1b[2J\x1b[H\x1b[10;5H\x1b[K\x1b[3D\x1b[?1049h\x1b[?25l", "\x1b[1;31mred\x1b[0m\x1b[2J\x1b[H\x1b[10;5H\x1b[K\x1b[3D\x1b[?1049h\x1b[?25l"},
		{"cursor position query (busybox ash's)", "/ # \x1b[6n", "/ # "},
		{"device attributes", "\x1b[c\x1b[>c\x1b[0c", ""},
		{"window operations", "\x1b[21t\x1b[8;100;200t", ""},
		{"title and clipboard (OSC, BEL and ST)", "a\x1b]0;title\x07b\x1b]52;c;ZXZpbA==\x1b\\c", "abc"},
		{"DCS, APC, PM, SOS", "a\x1bPq#0;2;0;0;0\x1b\\b\x1b_apc\x1b\\c\x1b^pm\x1b\\d\x1bXsos\x1b\\e", "abcde"},
		{"DECID", "a\x1bZb", "ab"},
		{"request mode, cursor style (intermediates)", "\x1b[?2004$p\x1b[2 q", ""},
		{"charset designation and keypad", "\x1b(B\x1b=\x1b>\x1b7\x1b8", "\x1b(B\x1b=\x1b>\x1b7\x1b8"},
		{"8-bit C1 CSI and OSC are not UTF-8", "a\x9b6nb\x9d0;t\x07", "a?6nb?0;t\x07"},
		{"a character cut by ESC", "\xc3\x1b[mx", "\xc3\x1b[mx"},
		{"C1 controls in UTF-8", "a\xc2\x9b6n\xc2\x9d0;t\x07\xc2\xa0", "a?6n?0;t\x07\xc2\xa0"},
		{"a sequence too long is dropped", "\x1b[" + string(bytes.Repeat([]byte("1;"), 100)) + "mok", "ok"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s sanitizer
			if got := string(s.filter(nil, []byte(tc.in))); got != tc.want {
				t.Errorf("whole: %q, want %q", got, tc.want)
			}
			var byByte sanitizer
			var got []byte
			for i := range len(tc.in) { // the same however the output is cut
				got = byByte.filter(got, []byte{tc.in[i]})
			}
			if string(got) != tc.want {
				t.Errorf("byte by byte: %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzSanitizer: whatever a session writes, a watcher gets no OSC, DCS, APC, PM, SOS, query or
// 8-bit control, and no more than was written.
func FuzzSanitizer(f *testing.F) {
	for _, seed := range []string{"\x1b[6n", "\x1b]52;c;x\x07", "\x1bP\x1b\\", "\x9b6n", "é\x1b[1m"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var s sanitizer
		out := s.filter(nil, in)
		if len(out) > len(in) {
			t.Fatalf("%d bytes out of %d in", len(out), len(in))
		}
		for i := 0; i < len(out); i++ {
			if out[i] != 0x1b {
				continue
			}
			if i+1 < len(out) && bytes.IndexByte([]byte("]P^_XZ"), out[i+1]) >= 0 {
				t.Fatalf("string or DECID kept at %d: %q", i, out)
			}
			if i+1 < len(out) && out[i+1] == '[' {
				j := i + 2
				for j < len(out) && out[j] >= 0x20 && out[j] <= 0x3f {
					j++
				}
				if j < len(out) && (out[j] == 'n' || out[j] == 'c' || out[j] == 't') {
					t.Fatalf("query kept at %d: %q", i, out)
				}
			}
		}
		for _, r := range string(out) {
			if r >= 0x80 && r <= 0x9f {
				t.Fatalf("C1 control U+%04X kept: %q", r, out)
			}
		}
	})
}
