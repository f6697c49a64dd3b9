package commandline

import (
	"strings"
	"testing"
	"time"
)

// ev is one piece of traffic: keys typed (in), terminal output (out), or a
// resize (w, h).
type ev struct {
	in, out string
	w, h    int
}

func in(s string) ev  { return ev{in: s} }
func out(s string) ev { return ev{out: s} }

func run(w, h int, evs []ev) []Command {
	var got []Command
	t := NewTracker(w, h, func(c Command) { got = append(got, c) })
	t.now = func() time.Time { return time.Unix(0, 0) }
	for _, e := range evs {
		switch {
		case e.in != "":
			t.Input([]byte(e.in))
		case e.out != "":
			t.Output([]byte(e.out))
		case e.w == 0:
			t.Close()
		default:
			t.Resize(e.w, e.h)
		}
	}
	return got
}

func TestTracker(t *testing.T) {
	type want struct{ line, conf, why string }
	long := strings.Repeat("a", MaxLineBytes+100)
	tests := []struct {
		name string
		w, h int
		evs  []ev
		want []want
	}{
		{"typed and echoed", 80, 24, []ev{out("$ "), in("ls"), out("ls"), in("\r"), out("\r\nfile\r\n$ ")},
			[]want{{"ls", High, ""}}},
		{"backspace", 80, 24, []ev{out("$ "), in("lx\x7fs"), out("lx\b\x1b[Ks"), in("\r"), out("\r\n")},
			[]want{{"ls", High, ""}}},
		{"Ctrl-W", 80, 24, []ev{out("$ "), in("ls -l xy\x17"), out("ls -l xy\b\b\x1b[K"), in("\r"), out("\r\n")},
			[]want{{"ls -l ", High, ""}}},
		{"Ctrl-W and Ctrl-U", 80, 24, []ev{out("$ "), in("rm x\x17\x15ls"), out("rm x\b\x1b[K\r$ \x1b[Kls"), in("\r"), out("\r\n")},
			[]want{{"ls", High, ""}}},
		{"cursor left, insert", 80, 24, []ev{out("$ "), in("eho\x1b[D\x1b[Dc"), out("eho\b\b\x1b[1@c"), in("\r"), out("\r\n")},
			[]want{{"echo", High, ""}}},
		{"history recall shows only on screen", 80, 24, []ev{out("$ "), in("\x1b[A"), out("echo hi"), in("\r"), out("\r\nhi\r\n")},
			[]want{{"echo hi", High, ""}}},
		{"history recalled, Enter before the redraw", 80, 24, []ev{out("$ "), in("\x1b[A\r"), out("echo hi\r\nhi\r\n")},
			[]want{{"echo hi", Low, "drawn only after Enter"}}},
		{"completion listed, prompt drawn again", 80, 24, []ev{out("$ "), in("ls b\t\t"), out("ls b\a\r\nbeta  bravo\r\n$ ls b"),
			in("e\t"), out("eta "), in("\r"), out("\r\n")},
			[]want{{"ls beta ", High, ""}}},
		{"blanks typed at the end", 80, 24, []ev{out("$ "), in("ls  "), out("ls  "), in("\r"), out("\r\n")},
			[]want{{"ls  ", High, ""}}},
		{"echo off", 80, 24, []ev{out("pw: "), in("secret\r"), out("\r\n$ ")},
			[]want{{"", Low, "withheld"}}},
		{"echo off, no newline after", 80, 24, []ev{out("pw: "), in("secret\r"), out("$ "), in("l"), out("l"), in("s\r"), out("s\r\n")},
			[]want{{"", Low, "withheld"}, {"ls", High, ""}}},
		{"Ctrl-C", 80, 24, []ev{out("$ "), in("rm -rf /"), out("rm -rf /"), in("\x03"), out("^C\r\n$ "), in("\r"), out("\r\n$ ")},
			nil},
		{"empty line", 80, 24, []ev{out("$ "), in("\r"), out("\r\n$ ")}, nil},
		{"alternate screen: one record, no text", 80, 24, []ev{out("$ vi\r\n\x1b[?1049h"), in("iabc"), out("abc"), in("\r"), out("\r\n"),
			in("def"), out("def"), in("\r"), out("\r\n"), out("\x1b[?1049l$ ")},
			[]want{{"", Low, "alternate screen"}}},
		{"a shell hiding on the alternate screen", 80, 24, []ev{out("$ "), in("printf '\\e[?1049h'"), out("printf '\\e[?1049h'"), in("\r"),
			out("\r\n\x1b[?1049h$ "), in("rm -rf /data"), out("rm -rf /data"), in("\r"), out("\r\n$ ")},
			[]want{{"printf '\\e[?1049h'", High, ""}, {"", Low, "alternate screen"}}},
		{"output like a prompt after a history recall", 80, 24, []ev{out("$ "), in("\x1b[A"), out("rm -rf /data"), out("\r\n$ echo harmless"),
			in("\r"), out("\r\n$ "), in("x")},
			[]want{{"rm -rf /data", Low, "cursor was off the line"}}},
		{"unclosed quote continued at PS2", 80, 24, []ev{out("$ "), in("echo 'a"), out("echo 'a"), in("\r"), out("\r\n> "),
			in("b'"), out("b'"), in("\r"), out("\r\na\r\nb\r\n")},
			[]want{{"echo 'a\nb'", High, ""}}},
		{"backslash-newline", 80, 24, []ev{out("$ "), in("echo a \\"), out("echo a \\"), in("\r"), out("\r\n> "),
			in("b"), out("b"), in("\r"), out("\r\n")},
			[]want{{"echo a b", High, ""}}},
		{"Ctrl-C at PS2 drops the command", 80, 24, []ev{out("$ "), in("echo 'a"), out("echo 'a"), in("\r"), out("\r\n> "),
			in("b\x03"), out("b^C\r\n$ ")},
			nil},
		{"echo differs from keys", 80, 24, []ev{out("$ "), in("ls"), out("lx"), in("\r"), out("\r\n")},
			[]want{{"lx", Low, "does not show what the keys typed"}}},
		{"typed ahead of the output", 80, 24, []ev{out("$ "), in("ls\r"), out("ls\r\n"), in("pwd"), out("a b\r\n$ pwd"), in("\r"), out("\r\n")},
			[]want{{"ls", High, ""}, {"$ pwd", Low, "typed ahead"}}},
		{"pasted with Enter before the echo", 80, 24, []ev{out("$ "), in("ls\r"), out("ls\r\n")},
			[]want{{"ls", High, ""}}},
		{"Enter overtakes a wrapped echo", 10, 5, []ev{out("$ "), in("echo 12345678"), out("echo 123\r\r\n"), in("\r"), out("45678\r\n")},
			[]want{{"echo 12345678", High, ""}}},
		{"Enter overtakes a wrapped redraw on the bottom row", 10, 3, []ev{out("x\r\n$ "), in("\x1b[A"), out("\r$ echo 123\r\r\n456789abcd\r"),
			in("\r"), out("\r\nef\r\n")},
			[]want{{"echo 123456789abcdef", High, ""}}},
		{"wrapped by the terminal", 10, 5, []ev{out("$ "), in("echo 12345678"), out("echo 12345678"), in("\r"), out("\r\n")},
			[]want{{"echo 12345678", High, ""}}},
		{"start scrolled out", 10, 3, []ev{out("$ "), in("ls"), out("ls\r\n1\r\n2\r\n3\r\n"), in("\r"), out("\r\n")},
			[]want{{"", Low, "no longer on screen"}}},
		{"resized while typing", 80, 24, []ev{out("$ "), in("ls"), out("ls"), {w: 100, h: 30}, in("\r"), out("\r\n")},
			[]want{{"ls", Low, "resized"}}},
		{"the session ends right after Enter", 80, 24, []ev{out("$ "), in("rm -rf /data"), out("rm -rf /data"), in("\r"), {}},
			[]want{{"rm -rf /data", High, ""}}},
		{"longer than MaxLineBytes", MaxLineBytesTestWidth, 256, []ev{out("$ "), in(long), out(long), in("\r"), out("\r\n")},
			[]want{{long[:MaxLineBytes], Low, "cut"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(tt.w, tt.h, tt.evs)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d commands %+v, want %d", len(got), got, len(tt.want))
			}
			for i, c := range got {
				w := tt.want[i]
				if c.Seq != i+1 || c.Line != w.line || c.Confidence != w.conf || !strings.Contains(c.Why, w.why) || (w.why == "") != (c.Why == "") {
					t.Errorf("command %d = %+v, want %+v", i, c, w)
				}
			}
		})
	}
}

// MaxLineBytesTestWidth is the widest screen: 320 × 128 cells hold a line
// longer than MaxLineBytes.
const MaxLineBytesTestWidth = 320

func TestUnfinishedJoin(t *testing.T) {
	tests := []struct {
		lines []string
		want  string // "" while unfinished
	}{
		{[]string{"echo a"}, "echo a"},
		{[]string{"echo 'a", "b'"}, "echo 'a\nb'"},
		{[]string{`echo "a`, `b \" c`, `d"`}, "echo \"a\nb \\\" c\nd\""},
		{[]string{`echo a \`, `b \`, `c`}, "echo a b c"},
		{[]string{`echo "a \`, `b"`}, "echo \"a \\\nb\""},
		{[]string{`echo it's # comment`}, ""},
		{[]string{`echo hi # it's a comment`}, "echo hi # it's a comment"},
		{[]string{`echo a\\`}, `echo a\\`},
		{[]string{`echo '\'`}, `echo '\'`},
	}
	for _, tt := range tests {
		cmd := tt.lines[0]
		for _, l := range tt.lines[1:] {
			if !Unfinished(cmd) {
				t.Fatalf("%q: finished before %q", cmd, l)
			}
			cmd = Join(cmd, l)
		}
		got := cmd
		if Unfinished(cmd) {
			got = ""
		}
		if got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.lines, got, tt.want)
		}
	}
}

func TestKeysAcrossInputs(t *testing.T) {
	// An escape sequence and a UTF-8 rune cut between two Input calls.
	got := run(80, 24, []ev{out("$ "), in("eho\x1b["), in("D\x1b"), in("[Dc\x05 \xc3"), in("\xa9"), out("echo é"), in("\r"), out("\r\n")})
	if len(got) != 1 || got[0].Line != "echo é" || got[0].Confidence != High {
		t.Fatalf("got %+v", got)
	}
}

func FuzzTracker(f *testing.F) {
	f.Add([]byte("\x00$ \x01ls\x7f\x1b[D\r\x00ls\r\n\x02\x10\x08\x01\x03\x00^C"))
	f.Add([]byte("\x01echo 'a\r\x00> \x01b'\r\x00\x1b[?1049h\x01x\r\x02\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []Command
		tr := NewTracker(20, 5, func(c Command) { got = append(got, c) })
		for len(data) > 0 {
			op := data[0]
			data = data[1:]
			n := min(len(data), int(op>>2)+1)
			switch op & 3 {
			case 0:
				tr.Output(data[:n])
			case 1:
				tr.Input(data[:n])
			default:
				if len(data) >= 2 {
					tr.Resize(int(data[0])*3, int(data[1]))
				}
			}
			data = data[n:]
		}
		for i, c := range got {
			if c.Seq != i+1 || len(c.Line) > MaxLineBytes ||
				(c.Confidence != High && c.Confidence != Low) ||
				(c.Confidence == Low) != (c.Why != "") ||
				(c.Line == "" && c.Why == "") {
				t.Fatalf("command %d: %+v", i, c)
			}
		}
		if len(tr.unfinished) > MaxLineBytes || len(tr.cur.edit.line) > MaxLineBytes {
			t.Fatalf("unbounded: %d, %d", len(tr.unfinished), len(tr.cur.edit.line))
		}
	})
}
