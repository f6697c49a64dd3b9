package execsession

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exec-proxy/exec-proxy/pkg/peers"
)

// fakeRecordingPeers answer opens with body (found) or answers.
type fakeRecordingPeers struct {
	body    string
	answers []peers.Answer
	asked   []string
}

func (f *fakeRecordingPeers) Open(_ context.Context, path string) (io.ReadCloser, []peers.Answer, error) {
	f.asked = append(f.asked, path)
	if f.body != "" {
		return io.NopCloser(strings.NewReader(f.body)), nil, nil
	}
	return nil, f.answers, nil
}

func TestRecordingREST(t *testing.T) {
	dir := t.TempDir()
	write := func(id, content string) {
		if err := os.WriteFile(filepath.Join(dir, id+".cast"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cast := `{"version":2,"execproxy.dev/session":{"session":"s1","namespace":"a","pod":"p","user":"alice"}}` + "\n[0.1,\"o\",\"hi\"]\n"
	write("s1", cast)
	write("s2", `{"version":2}`+"\n")                                                                              // not exec-proxy's
	write("s3", `{"version":2,"execproxy.dev/session":{"session":"s3","namespace":"a","pod":"p","user":"alice"}}`) // header not done
	notFound := peers.Answer{Peer: "r2", Code: http.StatusNotFound}
	down := peers.Answer{Peer: "r3 at 10.0.0.3:8443", Err: errors.New("connection refused")}
	cases := []struct {
		name, dir, namespace, id string
		peers                    *fakeRecordingPeers
		fromPeer                 bool
		want                     string // the stream, or the error
	}{
		{"here", dir, "a", "s1", nil, false, cast},
		{"other namespace", dir, "b", "s1", nil, false, `execsessions/recording.execproxy.dev "s1" not found`},
		{"not a session's", dir, "a", "s2", nil, false, "not found"},
		{"still waiting for its header", dir, "a", "s3", nil, false, "not found"},
		{"a path", dir, "a", "..%2Fs1", nil, false, "not found"},
		{"recording off", "", "a", "s1", nil, false, "not found"},
		{"on a peer", dir, "a", "s9", &fakeRecordingPeers{body: "from r2"}, false, "from r2"},
		{"nowhere", dir, "a", "s9", &fakeRecordingPeers{answers: []peers.Answer{notFound}}, false, "not found"},
		{"nowhere, a peer down", dir, "a", "s9", &fakeRecordingPeers{answers: []peers.Answer{notFound, down}}, false,
			`recording "s9" is not on exec-proxy replica r1, and other replicas could not be asked: r3 at 10.0.0.3:8443: connection refused`},
		{"a peer's request", dir, "a", "s9", &fakeRecordingPeers{body: "from r2"}, true, "not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p RecordingPeers
			if tc.peers != nil {
				p = tc.peers
			}
			ctx := ctxIn(tc.namespace, "admin")
			if tc.fromPeer {
				ctx = peers.NewContext(ctx, peers.Request{From: "r2"})
			}
			obj, err := NewRecordingREST(tc.dir, "r1", p, nil).Get(ctx, tc.id, nil)
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				body, _, mime, _ := obj.(*castStream).InputStream(ctx, "", "")
				b, _ := io.ReadAll(body)
				body.Close()
				got = string(b)
				if mime != "application/x-asciicast" {
					t.Errorf("content type %q", mime)
				}
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if tc.peers != nil && tc.fromPeer == (len(tc.peers.asked) > 0) {
				t.Errorf("asked peers %v", tc.peers.asked)
			}
		})
	}
}
