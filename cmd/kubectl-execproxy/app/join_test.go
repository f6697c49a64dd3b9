package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

// The joiner's keys go to the session up to Ctrl-], which leaves; Ctrl-C and Ctrl-D are keys too.
func TestLeaveReader(t *testing.T) {
	cases := []struct {
		name  string
		reads []string
		want  string
		left  bool
	}{
		{"keys", []string{"ls\r", "\x03\x04"}, "ls\r\x03\x04", false},
		{"leave mid-read", []string{"ls\r", "ex\x1dit\r"}, "ls\rex", true},
		{"leave first", []string{"\x1dls"}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			left := false
			var readers []io.Reader
			for _, r := range tc.reads {
				readers = append(readers, &oneRead{s: r})
			}
			l := &leaveReader{r: io.MultiReader(readers...), leave: func() { left = true }}
			got, err := io.ReadAll(l)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want || left != tc.left {
				t.Errorf("got %q, left %v; want %q, left %v", got, left, tc.want, tc.left)
			}
		})
	}
}

// oneRead returns its string in one read.
type oneRead struct{ s string }

func (o *oneRead) Read(p []byte) (int, error) {
	if o.s == "" {
		return 0, io.EOF
	}
	n := copy(p, o.s)
	o.s = o.s[n:]
	return n, nil
}

// join asks execsessions/attach for stdin, stdout and a TTY, and says why exec-proxy refused.
func TestJoinSessionAsks(t *testing.T) {
	var asked string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		asked = req.URL.Path + "?" + req.URL.RawQuery
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: `cannot create resource "execsessions/attach"`})
	}))
	defer srv.Close()
	cfg := &rest.Config{Host: srv.URL, APIPath: "/apis", ContentConfig: rest.ContentConfig{
		GroupVersion:         &schema.GroupVersion{Group: api.GroupName, Version: "v1alpha1"},
		NegotiatedSerializer: serializer.WithoutConversionCodecFactory{CodecFactory: api.Codecs}}}
	client, err := rest.RESTClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := &cobra.Command{}
	var stderr bytes.Buffer
	cmd.SetIn(strings.NewReader(""))
	cmd.SetOut(io.Discard)
	cmd.SetErr(&stderr)
	err = joinSession(context.Background(), cfg, client, "ns", "s1", cmd)
	if want := "/apis/execproxy.dev/v1alpha1/namespaces/ns/execsessions/s1/attach?stdin=true&stdout=true&tty=true"; asked != want {
		t.Errorf("asked %q, want %q", asked, want)
	}
	if err == nil || !strings.Contains(err.Error(), "execsessions/attach") {
		t.Errorf("got %v, want exec-proxy's refusal", err)
	}
	if !strings.Contains(stderr.String(), "someone else's session") {
		t.Errorf("stderr %q does not say the session is someone else's", stderr.String())
	}
}
