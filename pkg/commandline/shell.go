package commandline

import "strings"

// Unfinished reports whether a command line goes on at the shell's
// continuation prompt (PS2): it ends inside a quote, or with a backslash
// outside quotes. It reads quotes, backslashes and comments as POSIX sh
// does; an unfinished compound command (for ... without done, a here
// document) is not recognised.
func Unfinished(cmd string) bool {
	q, bs := scan(cmd)
	return q != 0 || bs
}

// Join appends the next physical line to an unfinished command the way
// bash records it in its history with lithist: a newline inside quotes is
// kept; a backslash-newline outside quotes is removed.
func Join(cmd, next string) string {
	if q, bs := scan(cmd); q == 0 && bs {
		return cmd[:len(cmd)-1] + next
	}
	return cmd + "\n" + next
}

// scan returns the quote still open at the end of cmd (0 if none) and
// whether cmd ends with a backslash outside quotes.
func scan(cmd string) (quote byte, trailingBackslash bool) {
	wordStart := true
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		switch quote {
		case '\'':
			if c == '\'' {
				quote = 0
			}
			continue
		case '"':
			switch c {
			case '\\':
				i++
			case '"':
				quote = 0
			}
			continue
		}
		switch c {
		case '\\':
			if i == len(cmd)-1 {
				return 0, true
			}
			i++
		case '\'', '"':
			quote = c
		case '#':
			if wordStart {
				return 0, false // a comment to the end of the line
			}
		}
		wordStart = strings.IndexByte(" \t;&|()<>\n", c) >= 0
	}
	return quote, false
}
