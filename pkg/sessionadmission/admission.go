// Package sessionadmission runs the cluster's own admission for a session, as kube-apiserver runs
// it on its exec path: a CONNECT of core pods/exec, pods/attach or pods/portforward with the
// options object built from the request, validated by k8s.io/apiserver's ValidatingAdmissionPolicy
// and ValidatingAdmissionWebhook plugins (and MutatingAdmissionWebhook, which kube-apiserver also
// runs on CONNECT), fed from the cluster's objects. Policies written for
// kube-apiserver match unchanged, so installing exec-proxy takes no control away.
package sessionadmission

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/warning"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// DirectPathOnlyLabel marks admission objects (policies, bindings, webhook configurations) that
// are meant for kube-apiserver's own exec path only, such as deploy/components/deny-direct-exec:
// exec-proxy does not read them. The label is on the cluster's objects, which only those who may
// write admission configuration can set.
const DirectPathOnlyLabel = "execproxy.dev/direct-path-only"

// Control runs an admission chain for sessions.
type Control struct {
	chain   admission.Interface
	objects admission.ObjectInterfaces
}

// New returns a Control running chain's mutating, then validating, plugins.
func New(chain admission.Interface) (*Control, error) {
	if _, ok := chain.(admission.ValidationInterface); !ok {
		return nil, fmt.Errorf("the admission chain %T validates nothing", chain)
	}
	return &Control{chain: chain, objects: admission.NewObjectInterfacesFromScheme(scheme.Scheme)}, nil
}

// Result is what admission said of an allowed or denied session: the audit annotations the
// plugins added, their warnings, for a denial the policy or webhook that denied it, and the
// options a mutating webhook changed (nil when none did).
type Result struct {
	Annotations map[string]string
	Warnings    []string
	DeniedBy    string
	Mutated     runtime.Object
}

// Admit runs admission for r by u as kube-apiserver's connect handler does: the mutating plugins,
// then the validating ones, on the options object. A denial is the plugin's own Status (a 403 or
// 422 with the policy's or the webhook's message). When a mutating webhook changed the options,
// Result.Mutated holds them, and the session must be the one they ask for, as kube-apiserver
// connects with them. The warnings are also added to ctx's response.
func (a *Control) Admit(ctx context.Context, r session.Request, u user.Info) (Result, error) {
	if a == nil {
		return Result{}, nil
	}
	opts, kind := options(r)
	original := opts.DeepCopyObject()
	attrs := &recordingAttributes{Attributes: admission.NewAttributesRecord(opts, nil, kind, r.Namespace, r.Pod,
		corev1.SchemeGroupVersion.WithResource("pods"), string(r.Kind), admission.Connect, nil, false, u)}
	warnings := &warningRecorder{}
	var err error
	if a.chain.Handles(admission.Connect) {
		start := time.Now()
		wctx := warning.WithWarningRecorder(ctx, warnings)
		if m, ok := a.chain.(admission.MutationInterface); ok {
			err = m.Admit(wctx, attrs, a.objects)
		}
		if err == nil {
			err = a.chain.(admission.ValidationInterface).Validate(wctx, attrs, a.objects)
		}
		result := "allowed"
		if err != nil {
			result = "denied"
		}
		admissionDuration.WithLabelValues(result).Observe(time.Since(start).Seconds())
	}
	res := Result{Annotations: attrs.annotationsSnapshot(), Warnings: warnings.snapshot()}
	if err == nil && !equality.Semantic.DeepEqual(original, attrs.GetObject()) {
		res.Mutated = attrs.GetObject()
	}
	if err != nil {
		res.DeniedBy = deniedBy(err)
	}
	for _, w := range res.Warnings {
		warning.AddWarning(ctx, "", w)
	}
	return res, err
}

// The plugins name who denied only in their messages (kube-apiserver's audit has no more): these
// are k8s.io/apiserver's spellings (policy/validating/dispatcher.go, webhook/errors).
var (
	policyDenial  = regexp.MustCompile(`ValidatingAdmissionPolicy '([^']*)'(?: with binding '([^']*)')? denied request`)
	webhookDenial = regexp.MustCompile(`admission webhook "([^"]*)" denied the request`)
	webhookFailed = regexp.MustCompile(`failed calling webhook "([^"]*)"`)
)

// deniedBy names the policy or webhook a denial came from: "ValidatingAdmissionPolicy/NAME"
// (with "/BINDING" when bound), "AdmissionWebhook/NAME", or "admission" when the
// message names none.
func deniedBy(err error) string {
	msg := err.Error()
	if m := policyDenial.FindStringSubmatch(msg); m != nil {
		if m[2] != "" {
			return "ValidatingAdmissionPolicy/" + m[1] + "/" + m[2]
		}
		return "ValidatingAdmissionPolicy/" + m[1]
	}
	if m := webhookDenial.FindStringSubmatch(msg); m != nil {
		return "AdmissionWebhook/" + m[1]
	}
	if m := webhookFailed.FindStringSubmatch(msg); m != nil {
		return "AdmissionWebhook/" + m[1] + " (not reached; failurePolicy Fail)"
	}
	return "admission"
}

// options is the object kube-apiserver's connect handler decodes from the query, and its kind.
func options(r session.Request) (runtime.Object, schema.GroupVersionKind) {
	gv := corev1.SchemeGroupVersion
	switch {
	case r.Exec != nil:
		return r.Exec.DeepCopy(), gv.WithKind("PodExecOptions")
	case r.Attach != nil:
		return r.Attach.DeepCopy(), gv.WithKind("PodAttachOptions")
	case r.PortForward != nil:
		return r.PortForward.DeepCopy(), gv.WithKind("PodPortForwardOptions")
	}
	return &corev1.PodPortForwardOptions{}, gv.WithKind("PodPortForwardOptions")
}

// recordingAttributes keeps the audit annotations the plugins add; webhooks add theirs from
// goroutines of their own.
type recordingAttributes struct {
	admission.Attributes
	mu          sync.Mutex
	annotations map[string]string
}

func (a *recordingAttributes) AddAnnotation(key, value string) error {
	return a.AddAnnotationWithLevel(key, value, auditinternal.LevelMetadata)
}

func (a *recordingAttributes) AddAnnotationWithLevel(key, value string, level auditinternal.Level) error {
	if err := a.Attributes.AddAnnotationWithLevel(key, value, level); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.annotations == nil {
		a.annotations = map[string]string{}
	}
	a.annotations[key] = value
	return nil
}

func (a *recordingAttributes) annotationsSnapshot() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.annotations)
}

// warningRecorder keeps the plugins' warnings, at most maxWarnings of them, each cut to
// maxWarningBytes: they go into every record of the session.
type warningRecorder struct {
	mu       sync.Mutex
	warnings []string
}

const (
	maxWarnings     = 16
	maxWarningBytes = 1024
)

func (w *warningRecorder) AddWarning(_, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(text) > maxWarningBytes {
		text = strings.ToValidUTF8(text[:maxWarningBytes], "") + "…"
	}
	if len(w.warnings) < maxWarnings {
		w.warnings = append(w.warnings, text)
	}
}

func (w *warningRecorder) snapshot() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.warnings...)
}

// ValidateUpdate runs the validating plugins for an update of pod's ephemeral containers into
// patched by u: the request kube-apiserver would have admitted had u sent it, where it sees
// exec-proxy's identity (kubectl debug through the route).
func (a *Control) ValidateUpdate(ctx context.Context, pod, patched *corev1.Pod, u user.Info) (Result, error) {
	if a == nil {
		return Result{}, nil
	}
	attrs := &recordingAttributes{Attributes: admission.NewAttributesRecord(patched.DeepCopy(), pod.DeepCopy(), corev1.SchemeGroupVersion.WithKind("Pod"),
		pod.Namespace, pod.Name, corev1.SchemeGroupVersion.WithResource("pods"), "ephemeralcontainers", admission.Update, &metav1.UpdateOptions{}, false, u)}
	warnings := &warningRecorder{}
	var err error
	if a.chain.Handles(admission.Update) {
		err = a.chain.(admission.ValidationInterface).Validate(warning.WithWarningRecorder(ctx, warnings), attrs, a.objects)
	}
	res := Result{Annotations: attrs.annotationsSnapshot(), Warnings: warnings.snapshot()}
	if err != nil {
		res.DeniedBy = deniedBy(err)
	}
	return res, err
}
