package execsession

import (
	"context"
	"fmt"
	"io"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/oversight"
	"github.com/exec-proxy/exec-proxy/pkg/proxy"
)

// VerbModerate on execsessions/attach lets a watch or a join of a session whose rule requires a
// moderator count as its moderator's (a verb of its own, as RBAC's escalate and bind are).
const VerbModerate = "moderate"

// moderates returns s's moderation when watcher moderates it (nil otherwise); see mayModerate.
func (r *AttachREST) moderates(ctx context.Context, s *proxy.Session, watcher authnv1.UserInfo) (*oversight.Moderation, error) {
	return r.mayModerate(ctx, s.Moderation(), sessionRef{id: s.ID, namespace: s.Namespace, user: s.User}, watcher)
}

// sessionRef names a session and its user.
type sessionRef struct{ id, namespace, user string }

// mayModerate returns m, the moderation of session s, when watcher moderates it (nil otherwise):
// s's rule requires a moderator (m is not nil), watcher is not s's own user, and may moderate on
// execsessions/attach in s's namespace. It is asked on the replica holding s, for a watcher a
// peer replica passed on too: that replica sent the watcher's groups and extra.
func (r *AttachREST) mayModerate(ctx context.Context, m *oversight.Moderation, s sessionRef, watcher authnv1.UserInfo) (*oversight.Moderation, error) {
	if m == nil || watcher.Username == s.user || r.authz == nil {
		return nil, nil
	}
	extra := map[string][]string{}
	for k, v := range watcher.Extra {
		extra[k] = v
	}
	u := &user.DefaultInfo{Name: watcher.Username, UID: watcher.UID, Groups: watcher.Groups, Extra: extra}
	decision, _, err := r.authz.Authorize(ctx, authorizer.AttributesRecord{User: u, Verb: VerbModerate, Namespace: s.namespace,
		APIGroup: api.GroupName, APIVersion: api.SchemeGroupVersion.Version, Resource: "execsessions", Subresource: "attach",
		Name: s.id, ResourceRequest: true})
	switch {
	case decision == authorizer.DecisionAllow:
		return m, nil
	case err != nil:
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("execsession %q requires a moderator, and whether you may moderate it cannot be told now: %v", s.id, err))
	}
	return nil, nil
}

// arrive counts name as a moderator of m (nil: nothing) until the returned func runs. It is
// called once the watcher's streams are open: a watch or join whose upgrade failed showed its
// watcher nothing, so it must not start the session nor name them in its start record.
func arrive(m *oversight.Moderation, name string) (leave func()) {
	if m == nil {
		return func() {}
	}
	return m.Arrive(name)
}

// moderatorIntro is the line a moderator of s sees first (nil for others).
func moderatorIntro(s *proxy.Session, m *oversight.Moderation) []byte {
	if m == nil {
		return nil
	}
	return m.Intro(s.User)
}

// afterScreen writes intro (nil: nothing) to out after the first write, which is the screen as
// it is (oversight.Terminal.Watch), since that write clears the watcher's terminal.
func afterScreen(out io.Writer, intro []byte) io.Writer {
	if intro == nil {
		return out
	}
	return &introWriter{Writer: out, intro: intro}
}

type introWriter struct {
	io.Writer
	intro []byte
}

func (w *introWriter) Write(p []byte) (int, error) {
	n, err := w.Writer.Write(p)
	if err == nil && w.intro != nil {
		_, err = w.Writer.Write(w.intro)
		w.intro = nil
	}
	return n, err
}

// watchAs is how a watcher watches term: a moderator (moderator not nil) is never left behind.
func watchAs(term *oversight.Terminal, moderator *oversight.Moderation) func(context.Context, io.Writer) error {
	if moderator != nil {
		return term.Oversee
	}
	return term.Watch
}
