// Package authz makes exec-proxy authorize against the user's existing core RBAC.
package authz

import (
	"context"

	authnv1 "k8s.io/api/authentication/v1"
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
	Delegate authorizer.Authorizer
	// PassedThrough holds for requests exec-proxy sends to kube-apiserver as the user, who
	// authorizes them there; nil: none.
	PassedThrough func(context.Context, authorizer.Attributes) bool
}

var _ authorizer.Authorizer = CoreRBAC{}

func (a CoreRBAC) Authorize(ctx context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	// The user is known here first: a refused attempt's record names who tried. The impersonation
	// filter asks first, as the authenticated user, whether they may act as another.
	if u := attrs.GetUser(); u != nil {
		sessionaudit.AttemptFrom(ctx).Update(func(rec *sessionaudit.Record) {
			if attrs.GetVerb() == "impersonate" {
				if rec.Impersonator == nil {
					info := UserInfo(u)
					rec.Impersonator = &info
				}
				return
			}
			rec.User = UserInfo(u)
		})
	}
	if a.PassedThrough != nil && a.PassedThrough(ctx, attrs) {
		return authorizer.DecisionAllow, "passed to kube-apiserver, which authorizes it as the user", nil
	}
	return a.Delegate.Authorize(ctx, Rewrite(attrs))
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
		rec.Verb = "create"
	}
	return rec
}
