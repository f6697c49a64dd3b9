package execsession

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/oversight"
	"github.com/exec-proxy/exec-proxy/pkg/peers"
	"github.com/exec-proxy/exec-proxy/pkg/proxy"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// lockChecker refuses a locked user (*proxy.Proxier).
type lockChecker interface {
	CheckLocks(ctx context.Context) error
}

// checkLocks refuses a locked user's watch or join; a request a peer replica passed on was checked
// by that replica.
func (r *AttachREST) checkLocks(ctx context.Context) error {
	if p, ok := peers.FromContext(ctx); ok && p.OnBehalfOf != "" {
		return nil
	}
	if l, ok := r.sessions.(lockChecker); ok {
		return l.CheckLocks(ctx)
	}
	return nil
}

// authorizeJoin asks the server's authorizer whether the user may join
// session name: create on execsessions/attach. The handler chain checked get only, when the upgrade came as a WebSocket
// GET. A request a peer replica passed on was authorized by that replica.
func (r *AttachREST) authorizeJoin(ctx context.Context, name string) error {
	if p, ok := peers.FromContext(ctx); ok && p.OnBehalfOf != "" {
		return nil
	}
	namespace, _ := request.NamespaceFrom(ctx)
	resource := schema.GroupResource{Group: api.GroupName, Resource: "execsessions/attach"}
	u, ok := request.UserFrom(ctx)
	if !ok || r.authz == nil {
		return apierrors.NewForbidden(resource, name, errors.New("joining a session needs create on execsessions/attach"))
	}
	decision, why, err := r.authz.Authorize(ctx, authorizer.AttributesRecord{User: u, Verb: "create", Namespace: namespace,
		APIGroup: api.GroupName, APIVersion: api.SchemeGroupVersion.Version, Resource: "execsessions", Subresource: "attach",
		Name: name, ResourceRequest: true})
	if decision == authorizer.DecisionAllow {
		return nil
	}
	msg := fmt.Sprintf("User %q cannot create resource \"execsessions/attach\" in API group %q in the namespace %q: joining a session types into it",
		u.GetName(), api.GroupName, namespace)
	if why != "" {
		msg += ": " + why
	}
	if err != nil {
		return apierrors.NewForbidden(resource, name, fmt.Errorf("%s: %w", msg, err))
	}
	return apierrors.NewForbidden(resource, name, errors.New(msg))
}

// joinHandler serves a join of s: a watch whose stdin is typed into the session. The owner is told
// only once the join-start record is written. moderator is the session's moderation when the
// joiner moderates it (nil otherwise).
func (r *AttachREST) joinHandler(s *proxy.Session, term *oversight.Terminal, joiner authnv1.UserInfo, moderator *oversight.Moderation) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !httpstream.IsUpgradeRequest(req) { // before its record: no join without an upgrade
			session.WriteStatus(w, req, apierrors.NewBadRequest("joining a session is an upgrade to SPDY or WebSocket, as kubectl attach makes: use kubectl execproxy join"))
			return
		}
		rec := sessionaudit.NewWatch(req, joiner)
		rec.Session, rec.SessionUser, rec.Namespace, rec.Pod, rec.Container = s.ID, s.User, s.Namespace, s.Pod, s.Container
		rec.Join, rec.Moderator = true, moderator != nil
		if r.watches != nil {
			if err := r.watches.WatchStarted(rec); err != nil {
				session.WriteStatus(w, req, err)
				return
			}
		}
		reason, typed := r.serveJoin(w, req, s, term, joiner.Username, moderator)
		klog.FromContext(req.Context()).Info("Join ended", "session", s.ID, "pod", klog.KRef(s.Namespace, s.Pod),
			"user", s.User, "joiner", joiner.Username, "typed", typed, "reason", reason)
		if r.watches != nil {
			rec.End, rec.Reason, rec.Typed = time.Now(), reason, typed
			r.watches.WatchEnded(rec)
		}
	})
}

// serveJoin runs the join; it returns why the join ended, and how many bytes the joiner typed. A
// moderator's join (moderator not nil) counts while its streams are open; of a session that waits
// for its moderator, it types into it once it started.
func (r *AttachREST) serveJoin(w http.ResponseWriter, req *http.Request, s *proxy.Session, term *oversight.Terminal, joiner string,
	moderator *oversight.Moderation) (string, int64) {
	reason := "the joiner's streams were not opened"
	var typed int64
	serveWatch(w, req, r.idle, true, func(ctx context.Context, in io.Reader, out io.Writer) error {
		defer arrive(moderator, joiner)()
		if moderator != nil {
			select {
			case <-moderator.Started():
			case <-term.Ended():
				reason = "the session ended"
				return nil
			case <-ctx.Done():
				reason = "the joiner left"
				return nil
			}
		}
		join := s.Join
		if moderator != nil { // it may have started just now
			join = func(joiner string) (*oversight.Join, error) { return s.JoinStarted(ctx, joiner) }
		}
		j, err := join(joiner)
		if err != nil {
			reason = err.Error()
			return err
		}
		defer func() { typed = j.Typed() }()
		defer j.Leave(klog.FromContext(ctx))
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		go func() { // ends with the joiner's connection, which closes in
			if err := typeInto(ctx, j, in); err != nil {
				cancel(err)
			}
		}()
		err = watchAs(term, moderator)(ctx, afterScreen(out, moderatorIntro(s, moderator)))
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, proxy.ErrStdinEnded):
			reason = "the session's stdin ended"
			return nil
		case errors.Is(err, oversight.ErrEnded):
			reason = "the session ended"
			return nil
		case err == nil && cause != nil && !errors.Is(cause, context.Canceled):
			reason = cause.Error() // typing failed
			return nil
		case err == nil:
			reason = "the joiner left"
			return nil
		}
		reason = err.Error()
		return err
	})
	return reason, typed
}

// typeInto types what the joiner sends into the session, until the joiner's stdin ends (nil: the
// join watches on) or the session's does.
func typeInto(ctx context.Context, j *oversight.Join, in io.Reader) error {
	buf := make([]byte, 4<<10)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if terr := j.Type(ctx, buf[:n]); terr != nil {
				return terr
			}
		}
		if err != nil {
			return nil
		}
	}
}
