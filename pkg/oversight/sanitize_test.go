package oversight

import (
	"bytes"
	"regexp"
	"testing"
	"unicode/utf8"
)

func TestSanitizer(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"text and newlines", "ls -l\r\nfile\r\n", "ls -l\r\nfile\r\n"},
		{"UTF-8", "héllo ✓ 😀 \uFFFD", "héllo ✓ 😀 \uFFFD"},
		{"colours and cursor moves", "\x1b[1;31mred\x1b[0m\x1b[2J\x1b[H\x1b[10;5H\x1b[K\x1b[3D\x1b[?1049h\x1b[?25l\x1b[4h", "\x1b[1;31mred\x1b[0m\x1b[2J\x1b[H\x1b[10;5H\x1b[K\x1b[3D\x1b[?1049h\x1b[?25l\x1b[4h"},
		{"cursor position query (busybox ash's)", "/ # \x1b[6n", "/ # "},
		{"device attributes", "\x1b[c\x1b[>c\x1b[0c", ""},
		{"window operations", "\x1b[21t\x1b[8;100;200t", ""},
		{"title and clipboard (OSC, BEL and ST)", "a\x1b]0;title\x07b\x1b]52;c;ZXZpbA==\x1b\\c", "abc"},
		{"DCS, APC, PM, SOS", "a\x1bPq#0;2;0;0;0\x1b\\b\x1b_apc\x1b\\c\x1b^pm\x1b\\d\x1bXsos\x1b\\e", "abcde"},
		{"an ESC ends a string and starts the next escape", "\x1b]0;x\x1b[mok", "\x1b[mok"},
		{"CAN and SUB abort strings and sequences", "\x1b]0;x\x18a\x1bPq\x1ab\x1b[1\x18c", "abc"},
		{"BEL does not end a DCS", "\x1bPq\x07hidden\x1b\\shown", "shown"},
		{"DECID, RIS, keypad modes", "a\x1bZb\x1bc\x1b=\x1b>c", "abc"},
		{"leaving UTF-8, 8-bit controls", "\x1b%@\x1b F\x1b G\xc3\x9b", "\u00db"},
		{"request mode, cursor style, kitty keyboard (intermediates, prefixes)", "\x1b[?2004$p\x1b[2 q\x1b[>15u\x1b[?u\x1b[>4;2m\x1b[?4m\x1b[?1;1;0S", ""},
		{"modes that change the watcher's input", "\x1b[?1000h\x1b[?1004h\x1b[?2004h\x1b[?1h\x1b[2h\x1b[12l\x1b[20h\x1b[?25;1000h", ""},
		{"ENQ, SO, SI", "a\x05b\x0ec\x0f", "abc"},
		{"charset designation, save and restore", "\x1b(B\x1b)0\x1b7\x1b8\x1bM", "\x1b(B\x1b)0\x1b7\x1b8\x1bM"},
		{"8-bit C1 CSI and OSC are not UTF-8", "a\x9b6nb\x9d0;t\x07", "a?6nb?0;t\x07"},
		{"C1 controls in UTF-8, overlong forms", "a\xc2\x9b6n\xc2\x9d\xe0\x82\x9b\xc2\xa0", "a?6n???\xc2\xa0"},
		{"a character cut by ESC", "\xc3\x1b[mx", "?\x1b[mx"},
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

// sanitized is what a watcher may be sent, written apart from the sanitizer: text (valid UTF-8, no
// C1), BEL BS HT LF VT FF CR, ESC 7 8 D E M H, charset designations, CSI drawing sequences, and
// the allowed modes.
var sanitized = regexp.MustCompile("^(?:[\\x07-\\x0d\\x20-\\x7e\\x{a0}-\\x{10ffff}]" +
	"|\\x1b[78DEMH]|\\x1b[()*+\\-./#][\\x30-\\x7e]" +
	"|\\x1b\\[[0-9;:]*[ABCDEFGHadef`JKLMPX@STrIZgbmsu]" +
	"|\\x1b\\[(?:4|\\?(?:7|12|25|47|1047|1048|1049)(?:;\\??(?:7|12|25|47|1047|1048|1049))*)[hl])*$")

// FuzzSanitizer: whatever a session writes, however it is cut, a watcher gets only what sanitized
// allows, and no more bytes than were written.
func FuzzSanitizer(f *testing.F) {
	for _, seed := range []string{"\x1b[6n", "\x1b]52;c;x\x07", "\x1bP\x1b\\", "\x9b6n", "é\x1b[1m", "\x1b]0;x\x1b[m", "\x1b%@\xc3\x9b6n",
		"\x1b[?1000h", "\x1b[>4;2m", "\xe0\x82\x9b", "\x1b[?25;1049h"} {
		f.Add([]byte(seed), 3)
	}
	f.Fuzz(func(t *testing.T, in []byte, cut int) {
		var s sanitizer
		var out []byte
		if cut > 0 && cut < len(in) {
			out = s.filter(out, in[:cut])
			out = s.filter(out, in[cut:])
		} else {
			out = s.filter(out, in)
		}
		if len(out) > len(in) {
			t.Fatalf("%d bytes out of %d in", len(out), len(in))
		}
		if !utf8.Valid(out) || !sanitized.Match(out) {
			t.Fatalf("sent %q for %q", out, in)
		}
	})
}
