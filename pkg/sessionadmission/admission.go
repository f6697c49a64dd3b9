// Package sessionadmission runs the cluster's own admission for a session, as kube-apiserver runs
// it on its exec path: a CONNECT of core pods/exec, pods/attach or pods/portforward with the
// options object built from the request, validated by k8s.io/apiserver's ValidatingAdmissionPolicy
// and ValidatingAdmissionWebhook plugins, fed from the cluster's objects. Policies written for
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

// Validator validates sessions with an admission chain.
type Validator struct {
	chain   admission.ValidationInterface
	objects admission.ObjectInterfaces
}

// New returns a Validator running chain's validating plugins.
func New(chain admission.Interface) (*Validator, error) {
	v, ok := chain.(admission.ValidationInterface)
	if !ok {
		return nil, fmt.Errorf("the admission chain %T validates nothing", chain)
	}
	return &Validator{chain: v, objects: admission.NewObjectInterfacesFromScheme(scheme.Scheme)}, nil
}

// Result is what admission said of an allowed or denied session: the audit annotations the
// plugins added, their warnings, and for a denial the policy or webhook that denied it.
type Result struct {
	Annotations map[string]string
	Warnings    []string
	DeniedBy    string
}

// Validate runs admission for r by u, as kube-apiserver's connect handler does. A denial is the
// plugin's own Status (a 403 or 422 with the policy's or the webhook's message); its warnings are
// also added to ctx's response.
func (a *Validator) Validate(ctx context.Context, r session.Request, u user.Info) (Result, error) {
	if a == nil {
		return Result{}, nil
	}
	opts, kind := options(r)
	attrs := &recordingAttributes{Attributes: admission.NewAttributesRecord(opts, nil, kind, r.Namespace, r.Pod,
		corev1.SchemeGroupVersion.WithResource("pods"), string(r.Kind), admission.Connect, nil, false, u)}
	warnings := &warningRecorder{}
	var err error
	if a.chain.Handles(admission.Connect) {
		start := time.Now()
		err = a.chain.Validate(warning.WithWarningRecorder(ctx, warnings), attrs, a.objects)
		result := "allowed"
		if err != nil {
			result = "denied"
		}
		admissionDuration.WithLabelValues(result).Observe(time.Since(start).Seconds())
	}
	res := Result{Annotations: attrs.annotationsSnapshot(), Warnings: warnings.snapshot()}
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
// (with "/BINDING" when bound), "ValidatingAdmissionWebhook/NAME", or "admission" when the
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
		return "ValidatingAdmissionWebhook/" + m[1]
	}
	if m := webhookFailed.FindStringSubmatch(msg); m != nil {
		return "ValidatingAdmissionWebhook/" + m[1] + " (not reached; failurePolicy Fail)"
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
