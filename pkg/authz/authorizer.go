// Package authz makes exec-proxy authorize against the user's existing core RBAC.
package authz

import (
	"context"
	"net/http"
	"reflect"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// CoreRBAC wraps the delegated (SubjectAccessReview) authorizer so that:
//   - execproxy.dev pods/<subresource> is checked as core pods/<subresource>: using exec-proxy never
//     needs, nor grants, anything beyond the native permission;
//   - opening a session requires create, also for WebSocket upgrades that arrive as GET, so get on
//     pods/exec (often granted to read-only roles) is never enough to exec.
type CoreRBAC struct {
	Delegate authorizer.UnconditionalAuthorizer // only its Authorize is asked
	// PassedThrough holds for requests exec-proxy sends to kube-apiserver as the user, who
	// authorizes them there; nil: none.
	PassedThrough func(context.Context, authorizer.Attributes) bool
}

var _ authorizer.Authorizer = CoreRBAC{}

func (a CoreRBAC) Authorize(ctx context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	// The user is known here first: a refused attempt's record names who tried. The impersonation
	// filter asks first, as the authenticated user, whether they may act as another.
	if u := attrs.GetUser(); u != nil {
		attempt := sessionaudit.AttemptFrom(ctx)
		authenticated, known := attempt.Authenticated()
		attempt.Update(func(rec *sessionaudit.Record) {
			info := UserInfo(u)
			if isImpersonationCheck(attrs.GetVerb()) {
				// The impersonator is who authenticated: a check may carry a user rewritten for it
				// (constrained impersonation's associated-node mode replaces the extra).
				if known {
					info = authenticated
				}
				if rec.Impersonator == nil {
					rec.Impersonator = &info
				}
				return
			}
			// Constrained impersonation caches an allowed impersonation and then asks no check: the
			// user that authenticated, when another, is the impersonator.
			if known && !reflect.DeepEqual(authenticated, info) {
				rec.Impersonator = &authenticated
			}
			rec.User = info
		})
	}
	if a.PassedThrough != nil && a.PassedThrough(ctx, attrs) {
		return authorizer.DecisionAllow, "passed to kube-apiserver, which authorizes it as the user", nil
	}
	return a.Delegate.Authorize(ctx, Rewrite(attrs))
}

// ConditionsAwareAuthorize is Authorize: never the delegate's own, which would skip the rewrite
// and the record above. exec-proxy's decisions carry no conditions.
func (a CoreRBAC) ConditionsAwareAuthorize(ctx context.Context, attrs authorizer.Attributes) authorizer.ConditionsAwareDecision {
	return authorizer.ConditionsAwareDecisionFromParts(a.Authorize(ctx, attrs))
}

// EvaluateConditions fails closed, as an authorizer without conditions must.
func (CoreRBAC) EvaluateConditions(context.Context, authorizer.ConditionsAwareDecision, authorizer.ConditionsData) (authorizer.Decision, string, error) {
	return authorizer.DecisionDeny, "", authorizer.ErrorConditionEvaluationNotSupported
}

// UserInfo is u as audit records carry it.
func UserInfo(u user.Info) authnv1.UserInfo {
	info := authnv1.UserInfo{Username: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups()}
	for k, v := range u.GetExtra() {
		if info.Extra == nil {
			info.Extra = map[string]authnv1.ExtraValue{}
		}
		info.Extra[k] = v
	}
	return info
}

// Rewrite returns the attributes exec-proxy checks for a request.
func Rewrite(attrs authorizer.Attributes) authorizer.Attributes {
	if !attrs.IsResourceRequest() || attrs.GetResource() != "pods" {
		return attrs
	}
	group := attrs.GetAPIGroup()
	if group != "" && group != api.GroupName {
		return attrs
	}
	rec := authorizer.AttributesRecord{
		User:            attrs.GetUser(),
		Verb:            attrs.GetVerb(),
		Namespace:       attrs.GetNamespace(),
		APIGroup:        "",
		APIVersion:      "v1",
		Resource:        "pods",
		Subresource:     attrs.GetSubresource(),
		Name:            attrs.GetName(),
		ResourceRequest: true,
		Path:            attrs.GetPath(),
	}
	if _, ok := session.KindFor(rec.Subresource); ok {
		rec.Verb = sessionVerb(rec.Verb)
	}
	return rec
}

// isImpersonationCheck tells whether verb is one the impersonation filters ask of the user acting
// as another: "impersonate" (the filter before 1.36), or constrained impersonation's
// "impersonate:<mode>" and "impersonate-on:<mode>:<verb>". A request's own verb has no colon (an
// HTTP method cannot).
func isImpersonationCheck(verb string) bool {
	return verb == "impersonate" || strings.HasPrefix(verb, "impersonate:") || strings.HasPrefix(verb, "impersonate-on:")
}

// sessionVerb is the verb a session request is checked with: create, whatever its method; a
// constrained impersonation's "impersonate-on:<mode>:<verb>" keeps its mode and takes create, so
// that an impersonator needs "impersonate-on:<mode>:create" to open a session as another user.
func sessionVerb(verb string) string {
	if strings.HasPrefix(verb, "impersonate-on:") {
		if i := strings.LastIndexByte(verb, ':'); i > len("impersonate-on") {
			return verb[:i+1] + "create"
		}
	}
	return "create"
}

// Authenticated is the server's authenticator: it notes who authenticated in the request's session
// attempt, before the impersonation filter acts for another user (see CoreRBAC.Authorize).
type Authenticated struct{ Delegate authenticator.Request }

func (a Authenticated) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	resp, ok, err := a.Delegate.AuthenticateRequest(req)
	if ok && resp != nil && resp.User != nil {
		sessionaudit.AttemptFrom(req.Context()).SetAuthenticated(UserInfo(resp.User))
	}
	return resp, ok, err
}
