package recording

import (
	"encoding/binary"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendEvent appends one asciicast v2 event line, [time,kind,data], to b. It writes what
// encoding/json wrote for the same event (compact, as tools that grep recordings expect), less its
// HTML escaping (<, > and & stay as they are) and with the time to the microsecond, as asciinema
// writes it: a recording's cost is this loop, at every byte a session carries, and encoding/json's
// reflection and escaping cost twice as much.
func appendEvent(b []byte, at time.Duration, kind string, data []byte) []byte {
	b = append(b, '[')
	b = strconv.AppendFloat(b, at.Seconds(), 'f', 6, 64)
	b = append(b, ',', '"')
	b = append(b, kind...) // o, i, r or m
	b = append(b, '"', ',')
	b = appendString(b, data)
	return append(b, "]\n"...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, as encoding/json does: invalid UTF-8 as U+FFFD, control
// characters, quote and backslash escaped, and U+2028 and U+2029, which some JavaScript players
// would take for line ends.
func appendString(b []byte, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Past text that needs no escape, most of what a session carries: eight bytes at a time,
		// then, past a clean word, 32 (four words' tests are independent, and the loop's overhead is
		// a quarter). Where a test of 32 finds a byte to look at, the scan goes on from its word:
		// the clean words before it are not tested again.
	clean:
		for i+8 <= len(s) && special(binary.LittleEndian.Uint64(s[i:])) == 0 {
			i += 8
			for i+32 <= len(s) {
				w := s[i : i+32 : i+32]
				if special(binary.LittleEndian.Uint64(w))|special(binary.LittleEndian.Uint64(w[8:]))|
					special(binary.LittleEndian.Uint64(w[16:]))|special(binary.LittleEndian.Uint64(w[24:])) != 0 {
					for special(binary.LittleEndian.Uint64(s[i:])) == 0 { // one of the four has it
						i += 8
					}
					break clean
				}
				i += 32
			}
		}
		if i == len(s) {
			break
		}
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

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special is non-zero when a byte of x (eight bytes of text) is a control character, a quote, a
// backslash or not ASCII: the bytes appendString looks at one by one. It may flag other bytes of
// a word that has one of those (a borrow from it, or a byte past 0x80 less 0x20, 0x22 or 0x5c),
// never a word without: with no such byte, no subtraction borrows across bytes, and a byte's top
// bit is set only where it was below the constant it was less. So the classic `&^x` of the zero
// byte test is not needed: appendString only asks whether a word may be skipped whole.
func special(x uint64) uint64 {
	return ((x - lsb*0x20) | ((x ^ lsb*'"') - lsb) | ((x ^ lsb*'\\') - lsb) | x) & msb
}
