package commandlinetest

import (
	"os"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		keys    []string
		noEcho  []bool
		wantErr bool
	}{
		{"keys", "ls<TAB><BS><C-u><C-w><UP><LEFT><DEL><ENTER>\n", []string{"ls\t\x7f\x15\x17\x1b[A\x1b[D\x1b[3~\r"}, []bool{false}, false},
		{"comments and blank lines", "# c\n\necho a<ENTER>\n", []string{"echo a\r"}, []bool{false}, false},
		{"literal <", "wc <LT>f<ENTER>\n", []string{"wc <f\r"}, []bool{false}, false},
		{"no echo", "<NOECHO>pw<ENTER>\n", []string{"pw\r"}, []bool{true}, false},
		{"unknown key", "<F13>\n", nil, nil, true},
		{"unclosed", "echo <ENTER\n", nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, err := Parse(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if len(lines) != len(tt.keys) {
				t.Fatalf("%d lines, want %d", len(lines), len(tt.keys))
			}
			for i, l := range lines {
				if string(l.Keys) != tt.keys[i] || l.NoEcho != tt.noEcho[i] {
					t.Errorf("line %d = %q noecho %v, want %q %v", i, l.Keys, l.NoEcho, tt.keys[i], tt.noEcho[i])
				}
			}
		})
	}
}

// TestCorpora: the committed corpora parse, and hold the 200 lines the
// issue asks for between them.
func TestCorpora(t *testing.T) {
	total := 0
	for _, name := range []string{"bash", "ash"} {
		f, err := os.Open("../testdata/" + name + ".txt")
		if err != nil {
			t.Fatal(err)
		}
		lines, err := Parse(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		total += len(lines)
	}
	if total < 200 {
		t.Errorf("%d lines, want at least 200", total)
	}
}
