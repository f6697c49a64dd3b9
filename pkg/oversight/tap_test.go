package oversight

import (
	"testing"

	"github.com/exec-proxy/exec-proxy/pkg/commandline"
)

// A tap reads the input only once its commands are read: before, stdin is not wanted and a line
// typed is no command; the output is wanted either way.
func TestTap(t *testing.T) {
	cases := []struct {
		name      string
		commands  bool
		wantStdin bool
		want      string // the command line read; "": none
	}{
		{"commands read", true, true, "echo hi"},
		{"commands not read", false, false, ""},
	}
	if (*Tap)(nil).Terminal() != nil {
		t.Error("a nil tap (no TTY) has a terminal")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tap := NewTap(nil)
			var got []commandline.Command
			if tc.commands {
				tap.StartCommands(func(c commandline.Command) { got = append(got, c) })
			}
			for stream, want := range map[string]bool{"stdout": true, "stdin": tc.wantStdin, "stderr": false} {
				if tap.Wants(stream) != want {
					t.Errorf("wants %s: %t, want %t", stream, !want, want)
				}
			}
			tap.Resize(100, 30)
			tap.Data("stdout", []byte("$ "))
			for _, k := range "echo hi" {
				tap.Data("stdin", []byte(string(k)))
				tap.Data("stdout", []byte(string(k)))
			}
			tap.Data("stdin", []byte("\r"))
			tap.Data("stdout", []byte("\r\nhi\r\n$ "))
			switch {
			case tc.want == "" && len(got) != 0:
				t.Errorf("commands %v, want none", got)
			case tc.want != "" && (len(got) != 1 || got[0].Line != tc.want):
				t.Errorf("commands %v, want %q", got, tc.want)
			}
		})
	}
}
