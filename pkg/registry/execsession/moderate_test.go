package execsession

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/utils/clock"

	"github.com/exec-proxy/exec-proxy/internal/poll"
	"github.com/exec-proxy/exec-proxy/pkg/oversight"
	"github.com/exec-proxy/exec-proxy/pkg/proxy"
	"github.com/exec-proxy/exec-proxy/pkg/terminal"
)

// moderators allows moderate on execsessions/attach in namespace "a" to the group "moderators";
// err, if set, is its answer to everything else.
type moderators struct {
	err   error
	asked []authorizer.Attributes
}

func (m *moderators) Authorize(_ context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	m.asked = append(m.asked, attrs)
	if slices.Contains(attrs.GetUser().GetGroups(), "moderators") && attrs.GetVerb() == VerbModerate && attrs.GetNamespace() == "a" &&
		attrs.GetResource() == "execsessions" && attrs.GetSubresource() == "attach" && attrs.GetAPIGroup() == "execproxy.dev" {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "", m.err
}

// A watch or join counts as a moderator's when the session's rule requires one, the watcher is not
// the session's user, and the authorizer allows moderate, asked with the watcher's groups (as a
// peer replica passes them on).
func TestMayModerate(t *testing.T) {
	m := oversight.NewModeration(time.Minute, clock.RealClock{}, oversight.ModerationHooks{})
	cases := []struct {
		name       string
		moderation *oversight.Moderation
		namespace  string
		watcher    authnv1.UserInfo
		err        error // the authorizer's
		moderator  bool
		asked      bool
		refused    func(error) bool // nil: no error
	}{
		{"a moderator", m, "a", authnv1.UserInfo{Username: "bob", Groups: []string{"moderators"}}, nil, true, true, nil},
		{"not allowed", m, "a", authnv1.UserInfo{Username: "eve", Groups: []string{"devs"}}, nil, false, true, nil},
		{"allowed elsewhere only", m, "b", authnv1.UserInfo{Username: "bob", Groups: []string{"moderators"}}, nil, false, true, nil},
		{"the session's own user", m, "a", authnv1.UserInfo{Username: "alice", Groups: []string{"moderators"}}, nil, false, false, nil},
		{"no moderation required", nil, "a", authnv1.UserInfo{Username: "bob", Groups: []string{"moderators"}}, nil, false, false, nil},
		{"the authorizer fails", m, "a", authnv1.UserInfo{Username: "eve"}, errors.New("webhook down"), false, true, apierrors.IsServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			authz := &moderators{err: tc.err}
			r := NewAttachREST(fakeSessions{}, "r1", nil, nil, authz)
			got, err := r.mayModerate(context.Background(), tc.moderation, sessionRef{id: "s1", namespace: tc.namespace, user: "alice"}, tc.watcher)
			if (got != nil) != tc.moderator {
				t.Errorf("moderator %v, want %v", got != nil, tc.moderator)
			}
			if (tc.refused == nil) != (err == nil) || (err != nil && !tc.refused(err)) {
				t.Errorf("error %v", err)
			}
			if (len(authz.asked) > 0) != tc.asked {
				t.Errorf("asked %v, want %v", authz.asked, tc.asked)
			}
		})
	}
}

// A watch or join counts as a moderator's only while its streams are open: one whose upgrade
// failed showed its watcher nothing, and must neither start the session nor be named as its
// moderator.
func TestModeratorCountsWhileItsStreamsAreOpen(t *testing.T) {
	for _, tc := range []struct {
		name     string
		join     bool
		protocol string // the client's WebSocket subprotocol
		counted  bool
	}{
		{"a watch", false, "v4.channel.k8s.io", true},
		{"a join", true, "v4.channel.k8s.io", true},
		{"a watch whose upgrade fails", false, "v0.channel.k8s.io", false},
		{"a join whose upgrade fails", true, "v0.channel.k8s.io", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := oversight.NewModeration(time.Minute, clock.RealClock{}, oversight.ModerationHooks{})
			defer m.Stop()
			term := oversight.New(terminal.New(80, 24))
			defer term.End()
			r := NewAttachREST(fakeSessions{}, "r1", nil, nil, nil)
			served := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				defer close(served)
				if tc.join { // the session has not started: the join waits for it
					r.serveJoin(w, req, &proxy.Session{}, term, "bob", m)
					return
				}
				r.serve(w, req, term, m, "bob", nil)
			}))
			defer srv.Close()
			config, err := websocket.NewConfig("ws"+strings.TrimPrefix(srv.URL, "http"), srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			config.Protocol = []string{tc.protocol}
			conn, err := websocket.DialConfig(config)
			if (err == nil) != tc.counted {
				t.Fatalf("dial: %v", err)
			}
			if conn != nil {
				poll.Until(t, func() bool { return slices.Equal(m.Moderators(), []string{"bob"}) })
				conn.Close()
			}
			<-served
			if counted := len(m.Moderated()) > 0; counted != tc.counted {
				t.Errorf("counted as a moderator: %v (%q), want %v", counted, m.Moderated(), tc.counted)
			}
			if got := m.Moderators(); len(got) != 0 {
				t.Errorf("moderators %q after the watch ended", got)
			}
		})
	}
}
