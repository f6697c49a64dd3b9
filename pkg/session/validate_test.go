package session

import (
	"net/url"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

func TestJustification(t *testing.T) {
	cases := []struct {
		name    string
		q       url.Values
		want    string
		wantErr string // empty: taken
	}{
		{"absent", url.Values{"command": {"ls"}}, "", ""},
		{"given", url.Values{JustificationParam: {"INC-1234: disk full"}}, "INC-1234: disk full", ""},
		{"non-ASCII UTF-8", url.Values{JustificationParam: {"Störung im Lager – INC-7"}}, "Störung im Lager – INC-7", ""},
		{"the longest taken", url.Values{JustificationParam: {strings.Repeat("x", MaxJustification)}}, strings.Repeat("x", MaxJustification), ""},
		{"given twice", url.Values{JustificationParam: {"a", "b"}}, "", "given 2 times"},
		{"one byte too long", url.Values{JustificationParam: {strings.Repeat("x", MaxJustification+1)}}, "", "257 bytes; at most 256"},
		{"a newline", url.Values{JustificationParam: {"INC-1\nforged: line"}}, "", "one line of printable UTF-8 text"},
		{"a tab", url.Values{JustificationParam: {"INC-1\tx"}}, "", "without control or format characters"},
		{"invalid UTF-8", url.Values{JustificationParam: {"INC-\xff"}}, "", "one line of printable UTF-8 text"},
		// A right-to-left override would show the record's reason otherwise than it is written.
		{"a bidi override", url.Values{JustificationParam: {"INC-1 \u202egnp.exe"}}, "", "without control or format characters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Justification(tc.q)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Errorf("got %q %v, want %q", got, err, tc.want)
				}
				return
			}
			if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), tc.wantErr) || got != "" {
				t.Errorf("got %q %v, want a 400 with %q", got, err, tc.wantErr)
			}
		})
	}
}

func TestCommandWithNUL(t *testing.T) {
	cases := []struct {
		name    string
		command []string
		wantErr string // empty: taken
	}{
		{"plain", []string{"cat", "/var/log/a.log"}, ""},
		{"empty elements", []string{"ls", "", ""}, ""},
		{"NUL in an argument", []string{"cat", "/etc/shadow\x00.log"}, `command element 1 ("/etc/shadow\x00.log") holds a NUL`},
		{"NUL in argv[0]", []string{"rm\x00", "-rf"}, "command element 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRequest(KindExec, "ns", "pod", &corev1.PodExecOptions{Stdout: true, Command: tc.command})
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("got %v", err)
				}
				return
			}
			if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want a 400 with %q", err, tc.wantErr)
			}
		})
	}
}
