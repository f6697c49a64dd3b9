package authz

import (
	"context"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// recorder is the delegated (SubjectAccessReview) authorizer: it records what it was asked.
type recorder struct{ got authorizer.Attributes }

func (r *recorder) Authorize(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	r.got = a
	return authorizer.DecisionAllow, "", nil
}

func TestCoreRBAC(t *testing.T) {
	alice := &user.DefaultInfo{Name: "alice"}
	cases := []struct {
		name                     string
		in                       authorizer.AttributesRecord
		verb, group, subresource string
	}{
		{"WebSocket GET of exec needs create", authorizer.AttributesRecord{Verb: "get", APIGroup: "execproxy.dev", Resource: "pods", Subresource: "exec", ResourceRequest: true}, "create", "", "exec"},
		{"SPDY POST of exec needs create", authorizer.AttributesRecord{Verb: "create", APIGroup: "execproxy.dev", Resource: "pods", Subresource: "exec", ResourceRequest: true}, "create", "", "exec"},
		{"attach over GET", authorizer.AttributesRecord{Verb: "get", APIGroup: "execproxy.dev", Resource: "pods", Subresource: "attach", ResourceRequest: true}, "create", "", "attach"},
		{"port-forward over GET", authorizer.AttributesRecord{Verb: "get", APIGroup: "", Resource: "pods", Subresource: "portforward", ResourceRequest: true}, "create", "", "portforward"},
		{"reading a pod stays get", authorizer.AttributesRecord{Verb: "get", APIGroup: "", Resource: "pods", ResourceRequest: true}, "get", "", ""},
		{"logs is not a session", authorizer.AttributesRecord{Verb: "get", APIGroup: "", Resource: "pods", Subresource: "log", ResourceRequest: true}, "get", "", "log"},
		{"other groups untouched", authorizer.AttributesRecord{Verb: "get", APIGroup: "example.com", Resource: "pods", Subresource: "exec", ResourceRequest: true}, "get", "example.com", "exec"},
		{"non-resource untouched", authorizer.AttributesRecord{Verb: "get", Path: "/api"}, "get", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.User, tc.in.Namespace, tc.in.Name = alice, "ns", "p"
			rec := &recorder{}
			if _, _, err := (CoreRBAC{Delegate: rec}).Authorize(context.Background(), tc.in); err != nil {
				t.Fatal(err)
			}
			got := rec.got
			if got.GetVerb() != tc.verb || got.GetAPIGroup() != tc.group || got.GetSubresource() != tc.subresource ||
				got.GetUser().GetName() != "alice" || got.GetNamespace() != "ns" || got.GetName() != "p" {
				t.Errorf("delegate asked %s %q %s/%s %s/%s for %s, want %s %q .../%s", got.GetVerb(), got.GetAPIGroup(),
					got.GetResource(), got.GetSubresource(), got.GetNamespace(), got.GetName(), got.GetUser().GetName(), tc.verb, tc.group, tc.subresource)
			}
		})
	}
}
