package session

import (
	"net/url"
	"strings"
	"testing"

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
		{"a newline", url.Values{JustificationParam: {"INC-1\nforged: line"}}, "", "one line of UTF-8 text"},
		{"a tab", url.Values{JustificationParam: {"INC-1\tx"}}, "", "without control characters"},
		{"invalid UTF-8", url.Values{JustificationParam: {"INC-\xff"}}, "", "one line of UTF-8 text"},
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
