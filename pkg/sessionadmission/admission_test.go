package sessionadmission

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/warning"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// fakeChain records what it was asked, and answers as told.
type fakeChain struct {
	got     admission.Attributes
	handles bool
	err     error
}

func (f *fakeChain) Handles(op admission.Operation) bool { return f.handles && op == admission.Connect }

func (f *fakeChain) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	f.got = a
	_ = a.AddAnnotation("validation.policy.admission.k8s.io/validation_failure", `[{"policy":"p"}]`)
	warning.AddWarning(ctx, "", "careful")
	return f.err
}

type recorder struct{ warnings []string }

func (r *recorder) AddWarning(_, text string) { r.warnings = append(r.warnings, text) }

// TestValidate: a session is admitted as kube-apiserver's connect handler admits it: CONNECT of
// core pods/<kind>, the options object, the user; the plugins' annotations and warnings are kept,
// and the warnings also reach the response.
func TestValidate(t *testing.T) {
	u := &user.DefaultInfo{Name: "amy", Groups: []string{"dev"}}
	cases := []struct {
		name string
		r    session.Request
		kind string
	}{
		{"exec", session.Request{Kind: session.KindExec, Namespace: "ns", Pod: "p", Exec: &corev1.PodExecOptions{Command: []string{"ls"}, Stdout: true}}, "PodExecOptions"},
		{"attach", session.Request{Kind: session.KindAttach, Namespace: "ns", Pod: "p", Attach: &corev1.PodAttachOptions{Stdin: true}}, "PodAttachOptions"},
		{"port-forward", session.Request{Kind: session.KindPortForward, Namespace: "ns", Pod: "p", PortForward: &corev1.PodPortForwardOptions{Ports: []int32{80}}}, "PodPortForwardOptions"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chain := &fakeChain{handles: true, err: apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "p",
				errors.New("ValidatingAdmissionPolicy 'no-ls' with binding 'all' denied request: no"))}
			a, err := New(chain)
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			res, err := a.Admit(warning.WithWarningRecorder(context.Background(), rec), tc.r, u)
			if !apierrors.IsForbidden(err) {
				t.Errorf("the plugin's error was not returned as it is: %v", err)
			}
			g := chain.got
			if g.GetOperation() != admission.Connect || g.GetResource() != corev1.SchemeGroupVersion.WithResource("pods") ||
				g.GetSubresource() != string(tc.r.Kind) || g.GetKind().Kind != tc.kind || g.GetNamespace() != "ns" || g.GetName() != "p" ||
				g.GetUserInfo().GetName() != "amy" || g.GetOldObject() != nil || g.IsDryRun() {
				t.Errorf("attributes: %s %v/%s %v %s/%s by %v", g.GetOperation(), g.GetResource(), g.GetSubresource(), g.GetKind(), g.GetNamespace(), g.GetName(), g.GetUserInfo())
			}
			if obj, _ := options(tc.r); obj == nil || g.GetObject() == nil {
				t.Error("no options object")
			}
			if res.DeniedBy != "ValidatingAdmissionPolicy/no-ls/all" || res.Annotations["validation.policy.admission.k8s.io/validation_failure"] == "" ||
				len(res.Warnings) != 1 || len(rec.warnings) != 1 || rec.warnings[0] != "careful" {
				t.Errorf("result %+v, response warnings %v", res, rec.warnings)
			}
		})
	}
	t.Run("a chain that handles no CONNECT", func(t *testing.T) {
		chain := &fakeChain{err: errors.New("must not be asked")}
		a, _ := New(chain)
		if _, err := a.Admit(context.Background(), cases[0].r, u); err != nil || chain.got != nil {
			t.Errorf("asked anyway: %v", err)
		}
	})
	var none *Control
	if _, err := none.Admit(context.Background(), cases[0].r, u); err != nil {
		t.Errorf("a nil Validator refused: %v", err)
	}
}

func TestDeniedBy(t *testing.T) {
	cases := []struct{ msg, want string }{
		{`pods "p" is forbidden: ValidatingAdmissionPolicy 'a' with binding 'b' denied request: no`, "ValidatingAdmissionPolicy/a/b"},
		{`ValidatingAdmissionPolicy 'a' denied request: no`, "ValidatingAdmissionPolicy/a"},
		{`admission webhook "hook.example.com" denied the request: no`, "AdmissionWebhook/hook.example.com"},
		{`Internal error occurred: failed calling webhook "hook.example.com": connection refused`, "AdmissionWebhook/hook.example.com (not reached; failurePolicy Fail)"},
		{`something else`, "admission"},
	}
	for _, tc := range cases {
		if got := deniedBy(errors.New(tc.msg)); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.msg, got, tc.want)
		}
	}
}

// mutatingChain changes the exec's command when asked, or denies before validation.
type mutatingChain struct {
	fakeChain
	deny      error
	validated bool
}

func (m *mutatingChain) Admit(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if m.deny != nil {
		return m.deny
	}
	a.GetObject().(*corev1.PodExecOptions).Command = []string{"id"}
	return nil
}

func (m *mutatingChain) Validate(ctx context.Context, a admission.Attributes, o admission.ObjectInterfaces) error {
	m.validated = true
	return m.fakeChain.Validate(ctx, a, o)
}

// TestAdmitMutating: as kube-apiserver's connect handler, the mutating plugins run first; a
// denial there ends it, and options they changed are the session's.
func TestAdmitMutating(t *testing.T) {
	r := session.Request{Kind: session.KindExec, Namespace: "ns", Pod: "p", Exec: &corev1.PodExecOptions{Command: []string{"ls"}, Stdout: true}}
	chain := &mutatingChain{fakeChain: fakeChain{handles: true}}
	c, _ := New(chain)
	res, err := c.Admit(context.Background(), r, &user.DefaultInfo{Name: "amy"})
	if err != nil || !chain.validated {
		t.Fatalf("admitted %v, validated %v", err, chain.validated)
	}
	if got, ok := res.Mutated.(*corev1.PodExecOptions); !ok || len(got.Command) != 1 || got.Command[0] != "id" {
		t.Errorf("mutated options %#v, want the command id", res.Mutated)
	}
	if r.Exec.Command[0] != "ls" {
		t.Error("the request's own options were changed in place")
	}

	chain = &mutatingChain{fakeChain: fakeChain{handles: true}, deny: apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "p",
		errors.New(`admission webhook "m.example.com" denied the request: no`))}
	c, _ = New(chain)
	res, err = c.Admit(context.Background(), r, &user.DefaultInfo{Name: "amy"})
	if !apierrors.IsForbidden(err) || chain.validated || res.Mutated != nil || res.DeniedBy != "AdmissionWebhook/m.example.com" {
		t.Errorf("a mutating denial: %v, validated %v, result %+v", err, chain.validated, res)
	}

	chain = &mutatingChain{fakeChain: fakeChain{handles: true}}
	chain.fakeChain.err = nil
	c, _ = New(&fakeChain{handles: true})
	if res, _ := c.Admit(context.Background(), r, nil); res.Mutated != nil {
		t.Errorf("unchanged options reported mutated: %#v", res.Mutated)
	}
}
