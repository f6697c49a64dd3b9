package execsession

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/authz"
	"github.com/exec-proxy/exec-proxy/pkg/oversight"
	"github.com/exec-proxy/exec-proxy/pkg/peers"
	"github.com/exec-proxy/exec-proxy/pkg/proxy"
	"github.com/exec-proxy/exec-proxy/pkg/recording"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// AttachPeers reach the replica that holds a session; *peers.Peers in production.
type AttachPeers interface {
	Peers
	// Upgrade returns a handler that passes an upgrade request to replica, as exec-proxy acting
	// for onBehalfOf.
	Upgrade(replica, path string, onBehalfOf authnv1.UserInfo) (http.Handler, error)
}

// Watches records who watches which session; *sessionaudit.Auditor in production (nil: none).
type Watches interface {
	WatchStarted(sessionaudit.Watch) error
	WatchEnded(sessionaudit.Watch)
}

// AttachREST serves execsessions/attach: a live TTY session's terminal, shown to a watcher as it
// is now and then as it changes, from whichever replica holds it. It is served as kubelets serve
// pods/attach (SPDY or WebSocket, so kubectl's own client reads it), and kube-apiserver holds
// `attach` long-running, as it does pods/attach: a watch holds no priority-and-fairness seat and
// outlives the request timeout. Authorized as get on execsessions/attach (create over SPDY).
// With stdin=true it is a join: the watcher also types into the session, which needs create on
// execsessions/attach, checked here since a WebSocket upgrade arrives as a GET.
type AttachREST struct {
	sessions Sessions
	replica  string
	peers    AttachPeers // nil: one replica
	watches  Watches
	authz    authorizer.UnconditionalAuthorizer // for joins; nil: none are allowed
	// idle ends a watch whose connection carried nothing for this long, either way: a watcher
	// that stopped reading (its writes block) is gone within it. kubectl pings every 5 s.
	idle time.Duration
}

var (
	_ rest.Connecter = &AttachREST{}
	_ rest.Storage   = &AttachREST{}
)

// NewAttachREST serves watches and joins of the sessions, of this replica and, through peers (nil:
// none), of the others; authz is the server's authorizer, which joins are asked of.
func NewAttachREST(sessions Sessions, replica string, peers AttachPeers, watches Watches, authz authorizer.UnconditionalAuthorizer) *AttachREST {
	return &AttachREST{sessions: sessions, replica: replica, peers: peers, watches: watches, authz: authz, idle: 10 * time.Minute}
}

func (*AttachREST) New() runtime.Object { return &corev1.PodAttachOptions{} }
func (*AttachREST) Destroy()            {}
func (*AttachREST) ConnectMethods() []string {
	return []string{http.MethodGet, http.MethodPost}
}
func (*AttachREST) NewConnectOptions() (runtime.Object, bool, string) {
	return &corev1.PodAttachOptions{}, false, ""
}

// Connect serves a watch, or with stdin a join.
func (r *AttachREST) Connect(ctx context.Context, name string, opts runtime.Object, _ rest.Responder) (http.Handler, error) {
	o, ok := opts.(*corev1.PodAttachOptions)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("unexpected options %T", opts))
	}
	if o.Stderr || !o.Stdout || !o.TTY {
		return nil, apierrors.NewBadRequest("a watch of a session reads its terminal: ask for stdout=true&tty=true (and stdin=true to join), without stderr")
	}
	watcher := watcherOf(ctx)
	if !recording.ValidSessionID(name) {
		return nil, apierrors.NewNotFound(api.Resource("execsessions"), name)
	}
	if err := r.checkLocks(ctx); err != nil { // a locked user neither joins nor watches
		return nil, err
	}
	if o.Stdin {
		if err := r.authorizeJoin(ctx, name); err != nil {
			return nil, err
		}
	}
	s, err := r.localSession(ctx, name)
	switch {
	case apierrors.IsNotFound(err) && r.peers != nil && !fromPeer(ctx):
		return r.atPeer(ctx, name, watcher)
	case err != nil:
		return nil, err
	}
	term := s.Terminal()
	switch {
	case term == nil:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("execsession %q has no terminal to watch: only exec and attach sessions with a TTY (-it) can be watched", name))
	case term.Full():
		return nil, apierrors.NewTooManyRequests(fmt.Sprintf("execsession %q has %d watchers already; try again when one has left", name, oversight.MaxWatchers), 10)
	}
	moderator, err := r.moderates(ctx, s, watcher)
	if err != nil {
		return nil, err
	}
	if o.Stdin {
		// A moderator may join a session that waits for one; it is typed into once it starts.
		if err := s.Joinable(); err != nil && (moderator == nil || moderator.IsStarted()) {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("execsession %q: %v", name, err))
		}
		return r.joinHandler(s, term, watcher, moderator), nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !httpstream.IsUpgradeRequest(req) { // before its record: no watch without an upgrade
			session.WriteStatus(w, req, apierrors.NewBadRequest("a watch of a session is an upgrade to SPDY or WebSocket, as kubectl attach makes: use kubectl execproxy watch"))
			return
		}
		rec := sessionaudit.NewWatch(req, watcher)
		rec.Session, rec.SessionUser, rec.Namespace, rec.Pod, rec.Container = s.ID, s.User, s.Namespace, s.Pod, s.Container
		rec.Moderator = moderator != nil
		if r.watches != nil {
			if err := r.watches.WatchStarted(rec); err != nil {
				session.WriteStatus(w, req, err)
				return
			}
		}
		reason := r.serve(w, req, term, moderator, watcher.Username, moderatorIntro(s, moderator))
		klog.FromContext(req.Context()).Info("Watch ended", "session", s.ID, "pod", klog.KRef(s.Namespace, s.Pod),
			"user", s.User, "watcher", watcher.Username, "reason", reason)
		if r.watches != nil {
			rec.End, rec.Reason = time.Now(), reason
			r.watches.WatchEnded(rec)
		}
	}), nil
}

// serve runs the watch, which shows the watcher intro (nil: nothing) below the screen, and counts
// watcher as a moderator of moderator (nil: none) while its streams are open; it returns why the
// watch ended.
func (r *AttachREST) serve(w http.ResponseWriter, req *http.Request, term *oversight.Terminal, moderator *oversight.Moderation, watcher string,
	intro []byte) string {
	reason := "the watcher's streams were not opened"
	serveWatch(w, req, r.idle, false, func(ctx context.Context, _ io.Reader, out io.Writer) error {
		defer arrive(moderator, watcher)()
		err := watchAs(term, moderator)(ctx, afterScreen(out, intro))
		switch {
		case errors.Is(err, oversight.ErrEnded):
			reason = "the session ended"
			return nil
		case err == nil:
			reason = "the watcher left"
			return nil
		}
		reason = err.Error()
		return err
	})
	return reason
}

// atPeer passes the watch to the replica that holds the session.
func (r *AttachREST) atPeer(ctx context.Context, name string, watcher authnv1.UserInfo) (http.Handler, error) {
	sessions := &REST{sessions: r.sessions, replica: r.replica, peers: r.peers}
	obj, err := sessions.askPeers(ctx, http.MethodGet, name, "")
	if err != nil {
		return nil, err
	}
	path := sessionsPath(ctx, name, nil) + "/attach"
	h, err := r.peers.Upgrade(obj.Status.Replica, path, watcher)
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("execsession %q is on exec-proxy replica %s, which cannot be reached: %v", name, obj.Status.Replica, err))
	}
	return h, nil
}

func (r *AttachREST) localSession(ctx context.Context, name string) (*proxy.Session, error) {
	namespace, _ := request.NamespaceFrom(ctx)
	for _, s := range r.sessions.Sessions() {
		if s.ID == name && s.Namespace == namespace {
			return s, nil
		}
	}
	return nil, apierrors.NewNotFound(api.Resource("execsessions"), name)
}

func fromPeer(ctx context.Context) bool {
	_, ok := peers.FromContext(ctx)
	return ok
}

// watcherOf is who watches: the user, or the one a peer replica acts for.
func watcherOf(ctx context.Context) authnv1.UserInfo {
	if p, ok := peers.FromContext(ctx); ok && p.OnBehalfOf != "" {
		if p.User != nil {
			return *p.User
		}
		return authnv1.UserInfo{Username: p.OnBehalfOf}
	}
	if u, ok := request.UserFrom(ctx); ok {
		return authz.UserInfo(u)
	}
	return authnv1.UserInfo{Username: "unknown"}
}
