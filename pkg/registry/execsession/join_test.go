package execsession

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/exec-proxy/exec-proxy/pkg/peers"
)

// fakeAuthorizer allows create on execsessions/attach to the users in allowed, and remembers what it was asked.
type fakeAuthorizer struct {
	allowed map[string]bool
	asked   []authorizer.Attributes
}

func (a *fakeAuthorizer) Authorize(_ context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	a.asked = append(a.asked, attrs)
	if a.allowed[attrs.GetUser().GetName()] && attrs.GetVerb() == "create" && attrs.GetResource() == "execsessions" &&
		attrs.GetSubresource() == "attach" && attrs.GetAPIGroup() == "execproxy.dev" {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "", nil
}

// Joining (stdin=true) needs create on execsessions/attach, asked of the server's authorizer
// before the session is looked for; a request a peer passed on was authorized there.
func TestJoinAuthorized(t *testing.T) {
	cases := []struct {
		name    string
		ctx     context.Context
		opts    corev1.PodAttachOptions
		asked   bool
		want    func(error) bool
		message string // in the error
	}{
		{"refused", ctxIn("a", "bob"), corev1.PodAttachOptions{Stdin: true, Stdout: true, TTY: true}, true, apierrors.IsForbidden,
			`User "bob" cannot create resource "execsessions/attach" in API group "execproxy.dev" in the namespace "a"`},
		{"allowed", ctxIn("a", "alice"), corev1.PodAttachOptions{Stdin: true, Stdout: true, TTY: true}, true, apierrors.IsNotFound, ""},
		{"a watch is not asked", ctxIn("a", "bob"), corev1.PodAttachOptions{Stdout: true, TTY: true}, false, apierrors.IsNotFound, ""},
		{"passed by a peer", peers.NewContext(ctxIn("a", "exec-proxy"), peers.Request{From: "r2", OnBehalfOf: "bob"}),
			corev1.PodAttachOptions{Stdin: true, Stdout: true, TTY: true}, false, apierrors.IsNotFound, ""},
		{"stderr", ctxIn("a", "alice"), corev1.PodAttachOptions{Stdin: true, Stdout: true, Stderr: true, TTY: true}, false, apierrors.IsBadRequest, ""},
		{"locked", ctxIn("a", "carol"), corev1.PodAttachOptions{Stdin: true, Stdout: true, TTY: true}, false, apierrors.IsForbidden, "locked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			authz := &fakeAuthorizer{allowed: map[string]bool{"alice": true, "carol": true}}
			r := NewAttachREST(lockedSessions{locked: "carol"}, "r1", nil, nil, authz)
			_, err := r.Connect(tc.ctx, "0f9c2a5e-1d6b-4e8a-9c3f-2b7d4e6a8c10", &tc.opts, nil)
			if !tc.want(err) || !strings.Contains(errString(err), tc.message) {
				t.Errorf("got %v, want another error with %q", err, tc.message)
			}
			if asked := len(authz.asked) > 0; asked != tc.asked {
				t.Errorf("the authorizer was asked: %v, want %v", asked, tc.asked)
			}
		})
	}
}

// lockedSessions has no sessions, and a lock on one user.
type lockedSessions struct {
	fakeSessions
	locked string
}

func (l lockedSessions) CheckLocks(ctx context.Context) error {
	if u, _ := request.UserFrom(ctx); u != nil && u.GetName() == l.locked {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "pods/exec"}, "", errors.New("user is locked"))
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
