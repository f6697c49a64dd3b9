package apiserver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/exec-proxy/exec-proxy/pkg/policy"
	"github.com/exec-proxy/exec-proxy/pkg/sessionadmission"
)

// denyUpdates is an admission chain that denies updates of ephemeral containers by user bob, and
// keeps what it was asked.
type denyUpdates struct{ got admission.Attributes }

func (d *denyUpdates) Handles(op admission.Operation) bool { return op == admission.Update }

func (d *denyUpdates) Validate(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	d.got = a
	if a.GetUserInfo().GetName() == "bob" {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, a.GetName(), errors.New("ValidatingAdmissionPolicy 'on-call' denied request: not on call"))
	}
	return nil
}

// TestEphemeralCheck: a debug container added through the route passes the cluster's admission as
// the user, and the session policy as an exec of its command.
func TestEphemeralCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(`apiVersion: execproxy.dev/v1alpha1
kind: SessionPolicy
rules:
- name: only-ls
  match: {namespaces: [prod]}
  commands: {tty: deny, allow: [{command: ls}]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := policy.NewSource(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	chain := &denyUpdates{}
	control, err := sessionadmission.New(chain)
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web"}}
	debug := func(c corev1.EphemeralContainer) (*corev1.Pod, []corev1.EphemeralContainer) {
		patched := pod.DeepCopy()
		patched.Spec.EphemeralContainers = []corev1.EphemeralContainer{c}
		return patched, patched.Spec.EphemeralContainers
	}
	container := func(tty bool, argv ...string) corev1.EphemeralContainer {
		return corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg", Command: argv, TTY: tty}}
	}
	cases := []struct {
		name, user string
		c          corev1.EphemeralContainer
		err        string
	}{
		{"an allowed command", "amy", container(false, "ls", "/"), ""},
		{"a command the rule does not allow", "amy", container(false, "sh"), `the debug container dbg runs its command as an exec would, and session policy rule "only-ls" does not allow the command ["sh"]`},
		{"the image's own command", "amy", container(false), `session policy rule "only-ls" allows listed commands only`},
		{"a terminal", "amy", container(true, "ls"), `session policy rule "only-ls" allows no terminal`},
		{"admission as the user", "bob", container(false, "ls"), "not on call"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := genericapirequest.WithUser(context.Background(), &user.DefaultInfo{Name: tc.user})
			patched, added := debug(tc.c)
			err := ephemeralCheck{policy: src, admission: control}.CheckEphemeral(ctx, pod, patched, added)
			if (tc.err == "") != (err == nil) || (err != nil && (!strings.Contains(err.Error(), tc.err) || !apierrors.IsForbidden(err))) {
				t.Fatalf("got %v, want a 403 with %q", err, tc.err)
			}
			if g := chain.got; g.GetOperation() != admission.Update || g.GetSubresource() != "ephemeralcontainers" || g.GetUserInfo().GetName() != tc.user ||
				g.GetOldObject() == nil || len(g.GetObject().(*corev1.Pod).Spec.EphemeralContainers) != 1 {
				t.Errorf("admission asked: %s %s by %v", g.GetOperation(), g.GetSubresource(), g.GetUserInfo())
			}
		})
	}
	if err := (ephemeralCheck{}).CheckEphemeral(context.Background(), pod, pod, nil); err != nil {
		t.Errorf("with no policy and no admission: %v", err)
	}
}

// lockedOut refuses the sessions of its user.
type lockedOut string

func (l lockedOut) Check(user string, _ []string) error {
	if user == string(l) {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New(`locked by exec-proxy lock "user-`+user+`"`))
	}
	return nil
}

// TestEphemeralCheckLocked: a locked user adds no debug container; others still do.
func TestEphemeralCheckLocked(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web"}}
	check := ephemeralCheck{locks: lockedOut("mallory")}
	for _, tc := range []struct{ user, err string }{{"mallory", `exec-proxy lock "user-mallory"`}, {"amy", ""}} {
		ctx := genericapirequest.WithUser(context.Background(), &user.DefaultInfo{Name: tc.user})
		err := check.CheckEphemeral(ctx, pod, pod, nil)
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: got %v, want %q", tc.user, err, tc.err)
		}
	}
}
