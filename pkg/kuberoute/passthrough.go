package kuberoute

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/transport"
	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// servedItself holds for the route requests exec-proxy answers itself: the sessions and kubectl
// debug's ephemeral containers, as the handler chain parsed them.
func servedItself(resourceRequest bool, group, resource, subresource string) bool {
	if !resourceRequest || group != "" || resource != "pods" {
		return false
	}
	_, connect := session.KindFor(subresource)
	return connect || subresource == "ephemeralcontainers"
}

// PassedThrough holds for the route requests a PassThrough sends on: exec-proxy's authorizer leaves
// them to kube-apiserver, which authorizes them as the user. It decides from the same parse of the
// same path as the Handler, so the two cannot disagree on what is served here. ctx is the request's
// (WithRouteRequests marks route requests: attrs carry the core path the route stands for).
func PassedThrough(ctx context.Context, attrs authorizer.Attributes) bool {
	route, _ := ctx.Value(routeRequestKey{}).(bool)
	info, ok := apirequest.RequestInfoFrom(ctx)
	// An unauthenticated request is never passed on (PassThrough refuses it), so it is authorized
	// here as any other: refused as system:anonymous, as kube-apiserver would.
	if !route || !ok || !isRequest(attrs, info) || attrs.GetUser() == nil || !authenticated(attrs.GetUser()) {
		return false
	}
	return !servedItself(attrs.IsResourceRequest(), attrs.GetAPIGroup(), attrs.GetResource(), attrs.GetSubresource())
}

// isRequest holds for the check of the request itself: the impersonation filter asks others in the
// same context (may this user act as that one?), and those are never left to kube-apiserver.
func isRequest(attrs authorizer.Attributes, info *apirequest.RequestInfo) bool {
	return attrs.GetVerb() != "impersonate" && attrs.GetVerb() == info.Verb && attrs.IsResourceRequest() == info.IsResourceRequest &&
		attrs.GetAPIGroup() == info.APIGroup && attrs.GetResource() == info.Resource && attrs.GetSubresource() == info.Subresource &&
		attrs.GetNamespace() == info.Namespace && attrs.GetName() == info.Name && attrs.GetPath() == info.Path
}

type routeRequestKey struct{}

// WithRouteRequests marks the requests to the route's paths in their context, for PassedThrough.
func WithRouteRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if _, ok := Strip(req.URL.Path); ok {
			req = req.WithContext(context.WithValue(req.Context(), routeRequestKey{}, true))
		}
		next.ServeHTTP(w, req)
	})
}

// forwardedHeaders are the request headers passed on: what the request means (its media types and
// encodings), and what kube-apiserver's audit and logs use to tell requests apart. Credentials,
// the front-proxy's X-Remote-* headers and the client's own Impersonate-* headers are not.
var forwardedHeaders = []string{"Accept", "Accept-Encoding", "Content-Type", "Content-Encoding", "User-Agent",
	"Audit-Id", "Kubectl-Command", "Kubectl-Session", "If-None-Match", "If-Modified-Since"}

// PassThrough sends the route's requests that exec-proxy does not serve itself to kube-apiserver as
// the user kube-apiserver authenticated: exec-proxy impersonates them (name, UID, groups and extra),
// so kube-apiserver authorizes, audits (as impersonatedUser) and queues (priority and fairness,
// by the impersonated user) each one as the user's own. Nothing is buffered: bodies, watches and
// followed logs stream both ways.
type PassThrough struct {
	proxy       *httputil.ReverseProxy
	longRunning *longRunningCap
}

// longRunningCap bounds the long-running requests (watches, logs, proxy) a user passes through at
// once on this replica: exec-proxy's max-in-flight limit does not count them, as kube-apiserver's
// does not. ("Streams" are a session's, in pkg/proxy.)
type longRunningCap struct {
	max         int
	longRunning func(*http.Request, *apirequest.RequestInfo) bool

	mu   sync.Mutex
	open map[string]int
}

// take counts one more long-running request of user, or says why not.
func (c *longRunningCap) take(user string) (release func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[user] >= c.max {
		return nil, apierrors.NewTooManyRequests(fmt.Sprintf(
			"user %q has %d long-running requests (watches, logs, proxy) open through exec-proxy's route on this replica, the limit is %d (--route-max-long-running-requests-per-user): end some, or use a context on kube-apiserver for them",
			user, c.open[user], c.max), 1)
	}
	c.open[user]++
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.open[user]--; c.open[user] <= 0 {
			delete(c.open, user)
		}
	}, nil
}

// WithLongRunningCap bounds each user's long-running pass-throughs (as longRunning tells them) to
// max at once; max 0: no bound.
func (p *PassThrough) WithLongRunningCap(max int, longRunning func(*http.Request, *apirequest.RequestInfo) bool) *PassThrough {
	if max > 0 {
		p.longRunning = &longRunningCap{max: max, longRunning: longRunning, open: map[string]int{}}
	}
	return p
}

// NewPassThrough sends requests to the kube-apiserver at host with rt, which carries exec-proxy's
// own credentials; its identity needs impersonate on users, groups, serviceaccounts, uids and
// userextras.
func NewPassThrough(host *url.URL, rt http.RoundTripper) *PassThrough {
	base := strings.TrimSuffix(host.Path, "/")
	p := &PassThrough{}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			core, _ := Strip(pr.In.URL.Path)
			out := &url.URL{Scheme: host.Scheme, Host: host.Host, Path: base + core, RawQuery: pr.In.URL.RawQuery}
			if escaped, ok := Strip(pr.In.URL.EscapedPath()); ok {
				out.RawPath = base + escaped // kept only if it encodes Path
			}
			pr.Out.URL, pr.Out.Host = out, host.Host
			pr.Out.Header, pr.Out.Trailer = http.Header{}, nil // trailers are headers too
			for _, name := range forwardedHeaders {
				if v := pr.In.Header.Values(name); len(v) > 0 {
					pr.Out.Header[http.CanonicalHeaderKey(name)] = slices.Clone(v)
				}
			}
		},
		Transport:     impersonating{next: rt},
		FlushInterval: -1, // watches and followed logs reach the client as they come
		// What ReverseProxy logs itself: an answer that broke off mid-body (kube-apiserver restarted
		// during a watch). Its default is the standard logger's bare lines.
		ErrorLog: log.New(proxyLog{}, "", 0),
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			if logger := klog.FromContext(req.Context()); errors.Is(req.Context().Err(), context.Canceled) {
				// The client went first (kubectl interrupted): nothing failed. The request timeout's
				// deadline is still an error.
				logger.V(2).Info("A route request's client went before kube-apiserver answered", "path", req.URL.Path, "err", err)
			} else {
				logger.Error(err, "Passing a route request to kube-apiserver", "path", req.URL.Path)
			}
			session.WriteStatus(w, req, apierrors.NewServiceUnavailable(fmt.Sprintf(
				"exec-proxy could not pass the request to kube-apiserver: %v; the same request on your usual context goes to kube-apiserver directly", err)))
		},
	}
	return p
}

// proxyLog writes ReverseProxy's messages to klog, structured.
type proxyLog struct{}

func (proxyLog) Write(msg []byte) (int, error) {
	klog.Background().Error(errors.New(strings.TrimSpace(string(msg))), "Passing a route request's answer from kube-apiserver")
	return len(msg), nil
}

func (p *PassThrough) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	u, ok := apirequest.UserFrom(req.Context())
	if !ok || !authenticated(u) {
		// A request reaching exec-proxy without kube-apiserver's authentication is not passed on as
		// anyone, not even as system:anonymous.
		session.WriteStatus(w, req, apierrors.NewUnauthorized("exec-proxy passes requests to kube-apiserver only for authenticated users"))
		return
	}
	if err := sentAsIs(u); err != nil {
		session.WriteStatus(w, req, apierrors.NewForbidden(schema.GroupResource{Group: api.GroupName, Resource: "routes"}, "kube",
			fmt.Errorf("exec-proxy cannot pass requests to kube-apiserver as %q: %w", u.GetName(), err)))
		return
	}
	if info, ok := apirequest.RequestInfoFrom(req.Context()); ok && p.longRunning != nil && p.longRunning.longRunning(req, info) {
		release, err := p.longRunning.take(u.GetName())
		if err != nil {
			session.WriteStatus(w, req, err)
			return
		}
		defer release()
	}
	p.proxy.ServeHTTP(w, req)
}

func authenticated(u user.Info) bool {
	return u.GetName() != user.Anonymous && slices.Contains(u.GetGroups(), user.AllAuthenticated)
}

// sentAsIs says why kube-apiserver would not read u from the impersonation headers exactly as it is:
// a header value loses its leading and trailing whitespace (HTTP/1.1) or cannot be sent at all
// (control characters), and kube-apiserver lowercases Impersonate-Extra- keys. Passed on anyway,
// "system:masters " would reach kube-apiserver as "system:masters". No name would be no
// impersonation at all.
func sentAsIs(u user.Info) error {
	if u.GetName() == "" {
		return errors.New("no user name")
	}
	values := append([]string{u.GetName(), u.GetUID()}, u.GetGroups()...)
	for k, vv := range u.GetExtra() {
		if strings.ContainsFunc(k, func(r rune) bool { return 'A' <= r && r <= 'Z' }) { // others are percent-encoded
			return fmt.Errorf("the extra key %q has ASCII capitals", k)
		}
		values = append(values, vv...)
	}
	for _, v := range values {
		if !httpguts.ValidHeaderFieldValue(v) || textproto.TrimString(v) != v {
			return fmt.Errorf("%q has control characters or leading or trailing whitespace", v)
		}
	}
	return nil
}

// impersonating sets the impersonation headers of the user the outgoing request's context carries
// (ReverseProxy keeps the incoming request's context), with client-go's own encoding of them.
type impersonating struct{ next http.RoundTripper }

func (t impersonating) RoundTrip(req *http.Request) (*http.Response, error) {
	u, ok := apirequest.UserFrom(req.Context())
	if !ok {
		return nil, fmt.Errorf("no user to act for")
	}
	as := transport.ImpersonationConfig{UserName: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups(), Extra: u.GetExtra()}
	return transport.NewImpersonatingRoundTripper(as, t.next).RoundTrip(req)
}
