package recording

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// appendEvent's line must decode, with encoding/json as asciinema's players do, to what
// encoding/json's own encoding decodes to: the same time to the microsecond, kind and text.
func TestAppendEventAsEncodingJSON(t *testing.T) {
	for _, data := range []string{
		"", "plain text", "tab\tnewline\nreturn\r", `quote " backslash \ slash /`, "<html> & </html>",
		"\x00\x01\x1f\x7f", "héllo wörld 日本語 🙂", "\xff\xfe bad \xc3", "\xe2\x80\xa8 line sep \xe2\x80\xa9",
		"\xed\xa0\x80 surrogate", "\xf4\x90\x80\x80 past U+10FFFF", strings.Repeat("ab\x00", 100),
	} {
		checkEvent(t, 1234567*time.Microsecond+999, "o", data)
	}
	// Each byte that needs a look, at each offset of the 32- and eight-byte runs appendString skips.
	for _, c := range []string{"\x00", "\x1f", " ", "\"", "\\", "\x7f", "\x80", "\xc3\xa9", "\xe2\x80\xa8", "\xff", "~", "\x21", "\x23", "\x5b", "\x5d", "\xa2"} {
		for at := 0; at < 72; at++ {
			checkEvent(t, 0, "o", strings.Repeat("a", at)+c+strings.Repeat("b", 72-at))
			checkEvent(t, 0, "o", strings.Repeat("a", at)+c+c+"\x00"+strings.Repeat("b", 72-at))
		}
	}
}

// The line is compact, as encoding/json's was: tools grep recordings for `"o","text`.
func TestAppendEventBytes(t *testing.T) {
	got := string(appendEvent(nil, 1500*time.Millisecond, "o", []byte("a<b\n")))
	if want := `[1.500000,"o","a<b\n"]` + "\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func FuzzAppendEvent(f *testing.F) {
	f.Add(int64(0), []byte("hello\n"))
	f.Add(int64(time.Hour), []byte("\x00\xff\xe2\x80\xa8"))
	f.Add(int64(1), []byte("12345678\"abcdefg\\hijklmn\x7f\x80opqrstuvwxyz0123456789"))
	f.Fuzz(func(t *testing.T, at int64, data []byte) {
		if at < 0 || at > int64(1000*time.Hour) {
			return
		}
		for _, kind := range []string{"o", "i", "r", "m"} {
			checkEvent(t, time.Duration(at), kind, string(data))
		}
	})
}

func checkEvent(t *testing.T, at time.Duration, kind, data string) {
	t.Helper()
	line := appendEvent(nil, at, kind, []byte(data))
	if got, want := appendString(nil, []byte(data)), appendStringBytewise(nil, []byte(data)); !bytes.Equal(got, want) {
		t.Fatalf("%q: %q, a byte at a time %q", data, got, want)
	}
	if !bytes.HasSuffix(line, []byte("]\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("%q: not one line: %q", data, line)
	}
	var got, want []interface{}
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("%q: %v in %q", data, err, line)
	}
	ref, _ := json.Marshal([]interface{}{at.Seconds(), kind, data})
	if err := json.Unmarshal(ref, &want); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("%q: decodes to %q, encoding/json's to %q", data, got, want)
	}
	if d := got[0].(float64) - want[0].(float64); d > 1e-6 || d < -1e-6 {
		t.Fatalf("time %v: %v, encoding/json's %v", at, got[0], want[0])
	}
}

// appendStringBytewise is appendString without its skips over words, as it wrote before them: its
// output must stay the same bytes, which players and tools that grep recordings have seen.
func appendStringBytewise(b []byte, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// TestSpecial: every byte value, at every place of a word of text that needs no escape, makes
// special non-zero exactly when appendString must look at it.
func TestSpecial(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := c < 0x20 || c == '"' || c == '\\' || c >= 0x80
		for at := 0; at < 8; at++ {
			w := []byte("abcdefgh")
			w[at] = byte(c)
			if got := special(binary.LittleEndian.Uint64(w)) != 0; got != want {
				t.Errorf("byte %#x at %d: special %v, want %v", c, at, got, want)
			}
		}
	}
}
