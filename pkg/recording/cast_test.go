package recording

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
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
	// Each byte that needs a look, at each offset of the eight-byte words appendString skips.
	for _, c := range []string{"\x00", "\x1f", " ", "\"", "\\", "\x7f", "\x80", "\xc3\xa9", "\xe2\x80\xa8", "\xff", "~"} {
		for at := 0; at < 20; at++ {
			checkEvent(t, 0, "o", strings.Repeat("a", at)+c+strings.Repeat("b", 20-at))
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
