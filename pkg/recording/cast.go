package recording

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendEvent appends one asciicast v2 event line, [time, kind, data], to b. It writes what
// encoding/json writes for the same event, less its HTML escaping (<, > and & stay as they are) and
// with the time to the microsecond, as asciinema writes it: a recording's cost is this loop, at
// every byte a session carries, and encoding/json's reflection and escaping cost twice as much.
func appendEvent(b []byte, at time.Duration, kind, data string) []byte {
	b = append(b, '[')
	b = strconv.AppendFloat(b, at.Seconds(), 'f', 6, 64)
	b = append(b, ", "...)
	b = appendString(b, kind)
	b = append(b, ", "...)
	b = appendString(b, data)
	return append(b, "]\n"...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, as encoding/json does: invalid UTF-8 as U+FFFD, control
// characters, quote and backslash escaped, and U+2028 and U+2029, which some JavaScript players
// would take for line ends.
func appendString(b []byte, s string) []byte {
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
		r, size := utf8.DecodeRuneInString(s[i:])
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
