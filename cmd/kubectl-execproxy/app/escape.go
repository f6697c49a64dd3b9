package app

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// EscapeTerminal makes a string a user controls (a command's argv, a user, pod or container name, a
// server's message) safe to print on an admin's terminal. It escapes what k8s.io/cli-runtime's
// printers.EscapeTerminal does, the same way (ESC as ^[, CR as \r), and more, since there a forged
// row is one newline away: every other control character (C0, DEL, C1: \n, \t, \x07, \x9b) and the
// line and paragraph separators and bidirectional controls (\u2028, \u202e) are written as Go
// escapes, and so is each byte that is not UTF-8. Everything else is printed as it is.
func EscapeTerminal(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || needsEscape(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\x1b':
			b.WriteString("^[")
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x100 && needsEscape(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func needsEscape(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || unicode.In(r, unicode.Zl, unicode.Zp)
}
