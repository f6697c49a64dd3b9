package oversight

import (
	"context"
	"errors"
	"strings"
	"testing"

	"k8s.io/klog/v2"
)

// fakeClient keeps what a join typed and the notices it wrote.
type fakeClient struct {
	typed     []string
	notices   []string
	noticeErr error
}

func (f *fakeClient) Inject(_ context.Context, p []byte) error {
	f.typed = append(f.typed, string(p))
	return nil
}

func (f *fakeClient) Notice(text []byte) error {
	if f.noticeErr != nil {
		return f.noticeErr
	}
	f.notices = append(f.notices, string(text))
	return nil
}

// The owner is told who joined and left, with the name made terminal-safe; a client that cannot
// be told refuses the join.
func TestJoin(t *testing.T) {
	cases := []struct {
		name, joiner, shown string
	}{
		{"plain", "alice", "alice"},
		{"escape sequence", "eve\x1b[2J\x1b[H", `eve\x1b[2J\x1b[H`},
		{"forged line", "eve]\r\n[exec-proxy: bob", `eve]\r\n[exec-proxy: bob`},
		{"bidirectional override", "eve\u202e", `eve\u202e`},
		{"not UTF-8", "eve\xff", `eve\xff`},
		{"C1 control", "eve\u009b", `eve\u009b`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeClient{}
			j, err := NewJoin("s1", c, tc.joiner)
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Type(context.Background(), []byte("ls\r")); err != nil {
				t.Fatal(err)
			}
			j.Leave(klog.Background())
			want := []string{"\r\n[exec-proxy: " + tc.shown + " joined this session and can type]\r\n", "\r\n[exec-proxy: " + tc.shown + " left]\r\n"}
			if strings.Join(c.notices, "|") != strings.Join(want, "|") {
				t.Errorf("notices %q, want %q", c.notices, want)
			}
			if j.Typed() != 3 || strings.Join(c.typed, "") != "ls\r" {
				t.Errorf("typed %d bytes %q, want ls\\r", j.Typed(), c.typed)
			}
		})
	}
	t.Run("the owner cannot be told", func(t *testing.T) {
		c := &fakeClient{noticeErr: errors.New("no place for a notice")}
		if _, err := NewJoin("s1", c, "alice"); err == nil {
			t.Error("joined a session whose owner could not be told")
		}
	})
}
