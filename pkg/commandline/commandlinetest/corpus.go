// Package commandlinetest reads a corpus of typing scripts for testing
// commandline.Tracker against real shells: one typed line per text line,
// keys in a readable notation. It is shared with the e2e, which replays the
// same corpus through kubectl exec -it.
//
// Notation: text is typed as is; <NAME> is a key: <ENTER>, <BS>, <TAB>,
// <UP>, <DOWN>, <LEFT>, <RIGHT>, <HOME>, <END>, <DEL>, <C-a> ... <C-z>
// (control keys), <LT> (a literal "<"). <NOECHO> marks a line the terminal
// will not echo (typed at a password prompt), so a player does not wait for
// its echo. Lines starting with "#" and blank lines are comments; a typed
// empty line is written "<ENTER>".
package commandlinetest

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/exec-proxy/exec-proxy/pkg/commandline"
)

// Line is one line of a script: the keys typed, up to and including the
// key that ends it (Enter or Ctrl-C) where it has one.
type Line struct {
	N      int    // line number in the script
	Source string // the line as written
	Keys   []byte
	NoEcho bool
}

var names = map[string]string{
	"ENTER": "\r", "BS": "\x7f", "TAB": "\t", "DEL": "\x1b[3~",
	"UP": "\x1b[A", "DOWN": "\x1b[B", "RIGHT": "\x1b[C", "LEFT": "\x1b[D",
	"HOME": "\x1b[H", "END": "\x1b[F", "LT": "<", "ESC": "\x1b",
}

// Parse reads a script.
func Parse(r io.Reader) ([]Line, error) {
	var lines []Line
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		src := sc.Text()
		if strings.TrimSpace(src) == "" || strings.HasPrefix(src, "#") {
			continue
		}
		l := Line{N: n, Source: src}
		rest := src
		for rest != "" {
			i := strings.IndexByte(rest, '<')
			if i < 0 {
				l.Keys = append(l.Keys, rest...)
				break
			}
			l.Keys = append(l.Keys, rest[:i]...)
			j := strings.IndexByte(rest[i:], '>')
			if j < 0 {
				return nil, fmt.Errorf("line %d: unclosed <", n)
			}
			name := rest[i+1 : i+j]
			rest = rest[i+j+1:]
			switch k, ok := names[name]; {
			case ok:
				l.Keys = append(l.Keys, k...)
			case name == "NOECHO":
				l.NoEcho = true
			case len(name) == 3 && strings.HasPrefix(name, "C-") && name[2] >= 'a' && name[2] <= 'z':
				l.Keys = append(l.Keys, name[2]-'a'+1)
			default:
				return nil, fmt.Errorf("line %d: unknown key <%s>", n, name)
			}
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading script: %w", err)
	}
	return lines, nil
}

// Ends reports whether the line ends with a key after which the shell
// prints a prompt (Enter or Ctrl-C), and returns the keys before it.
func (l Line) Ends() (before []byte, last byte, ok bool) {
	if n := len(l.Keys); n > 0 && (l.Keys[n-1] == '\r' || l.Keys[n-1] == 3) {
		return l.Keys[:n-1], l.Keys[n-1], true
	}
	return l.Keys, 0, false
}

// KeyLen is the length of the first key in p: an escape sequence (an
// arrow) or one UTF-8 character.
func KeyLen(p []byte) int {
	if p[0] == 0x1b && len(p) > 2 && p[1] == '[' {
		for i := 2; i < len(p); i++ {
			if p[i] >= 0x40 && p[i] <= 0x7e {
				return i + 1
			}
		}
	}
	_, n := utf8.DecodeRune(p)
	return n
}

// AshTrace reads the lines busybox ash read, as its verbose mode (set -v,
// from the ENV file, stderr to a file) wrote them: this busybox saves no
// history file and keeps only 15 lines in memory. A command continued at
// PS2 is joined as bash records it (commandline.Join), so that both shells
// are compared by the same rule. The corpus keeps commands from writing to
// stderr, which goes to the same trace.
func AshTrace(trace []byte) []string {
	var entries []string
	cont := false
	for _, l := range strings.Split(strings.TrimSuffix(string(trace), "\n"), "\n") {
		if cont {
			entries[len(entries)-1] = commandline.Join(entries[len(entries)-1], l)
		} else if l != "" {
			entries = append(entries, l)
		}
		cont = len(entries) > 0 && commandline.Unfinished(entries[len(entries)-1])
	}
	return entries
}
