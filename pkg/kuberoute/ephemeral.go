package kuberoute

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"sort"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/watch"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/pkg/authz"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// PodClient is what the route asks of kube-apiserver about pods with exec-proxy's own client, each
// after the handler chain authorized the user for that very request: adding ephemeral containers
// (kubectl debug), and listing and watching one pod by name (kubectl debug waits for its container).
type PodClient interface {
	PatchEphemeralContainers(ctx context.Context, namespace, name string, pt types.PatchType, patch []byte, opts metav1.PatchOptions) (*corev1.Pod, error)
	List(ctx context.Context, namespace string, opts metav1.ListOptions) (*corev1.PodList, error)
	Watch(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error)
}

// ClientPods is PodClient on a clientset; exec-proxy's ClusterRole needs patch on
// pods/ephemeralcontainers and list and watch on pods.
type ClientPods struct {
	Client kubernetes.Interface
}

func (c ClientPods) PatchEphemeralContainers(ctx context.Context, namespace, name string, pt types.PatchType, patch []byte, opts metav1.PatchOptions) (*corev1.Pod, error) {
	return c.Client.CoreV1().Pods(namespace).Patch(ctx, name, pt, patch, opts, "ephemeralcontainers")
}

func (c ClientPods) List(ctx context.Context, namespace string, opts metav1.ListOptions) (*corev1.PodList, error) {
	return c.Client.CoreV1().Pods(namespace).List(ctx, opts)
}

func (c ClientPods) Watch(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	return c.Client.CoreV1().Pods(namespace).Watch(ctx, opts)
}

// EphemeralCheck is what the ephemeral containers a user adds through the route must pass first,
// since kube-apiserver sees exec-proxy's identity, not the user's, on the patch: the cluster's
// admission under the user's identity, and the session policy, for each container's command as an
// exec's.
type EphemeralCheck interface {
	CheckEphemeral(ctx context.Context, pod *corev1.Pod, patched *corev1.Pod, added []corev1.EphemeralContainer) error
}

// maxPatchBytes bounds a patch of pods/ephemeralcontainers: kubectl's is one container's spec.
const maxPatchBytes = 1 << 20

// patchTypes are the patch types the route applies, by Content-Type. Server-side apply is not
// among them: kubectl debug does not send it, and it could not be checked as the others are.
var patchTypes = map[string]types.PatchType{
	string(types.JSONPatchType):           types.JSONPatchType,
	string(types.MergePatchType):          types.MergePatchType,
	string(types.StrategicMergePatchType): types.StrategicMergePatchType,
}

// ephemeralContainers serves kubectl debug's PATCH of pods/ephemeralcontainers. The chain authorized
// the user for patch on that very subresource of that pod; exec-proxy applies it with its own
// identity, so that an admin can let only exec-proxy (and break-glass) add ephemeral containers, and
// the container's creation is recorded as the user's. kube-apiserver's answer is passed on as it is.
func (h *Handler) ephemeralContainers(w http.ResponseWriter, req *http.Request, info *apirequest.RequestInfo) {
	if info.Verb != "patch" {
		session.WriteStatus(w, req, methodNotAllowed(req.Method, "pods/ephemeralcontainers"))
		return
	}
	pt, patch, opts, err := readPatch(req)
	if err != nil {
		session.WriteStatus(w, req, err)
		return
	}
	pod, err := h.Pods.Pod(info.Namespace, info.Name)
	if err != nil {
		session.WriteStatus(w, req, err)
		return
	}
	added, patched, err := ephemeralOnly(pod, pt, patch)
	if err == nil && h.Ephemeral != nil {
		err = h.Ephemeral.CheckEphemeral(req.Context(), pod, patched, added)
	}
	if err != nil {
		session.WriteStatus(w, req, err)
		return
	}
	// Recorded before it is asked for, so that no debug container runs unrecorded; kube-apiserver's
	// refusal, if it refuses, is a second record.
	if err := h.recordEphemeral(req, info, added, opts, nil); err != nil {
		session.WriteStatus(w, req, err)
		return
	}
	result, err := h.Client.PatchEphemeralContainers(req.Context(), info.Namespace, info.Name, pt, patch, opts)
	if err != nil {
		_ = h.recordEphemeral(req, info, added, opts, err)
	}
	h.write(w, req, corev1.SchemeGroupVersion, result, err)
}

func readPatch(req *http.Request) (types.PatchType, []byte, metav1.PatchOptions, error) {
	var opts metav1.PatchOptions
	mediaType, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	pt, ok := patchTypes[mediaType]
	if err != nil || !ok {
		return "", nil, opts, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
			Message: fmt.Sprintf("the body of a PATCH of pods/ephemeralcontainers must be one of %s, not %q", strings.Join(sortedKeys(patchTypes), ", "), req.Header.Get("Content-Type")),
		}}
	}
	if err := scheme.ParameterCodec.DecodeParameters(req.URL.Query(), corev1.SchemeGroupVersion, &opts); err != nil {
		return "", nil, opts, apierrors.NewBadRequest(err.Error())
	}
	patch, err := io.ReadAll(io.LimitReader(req.Body, maxPatchBytes+1))
	if err != nil {
		return "", nil, opts, apierrors.NewBadRequest(fmt.Sprintf("reading the patch: %v", err))
	}
	if len(patch) > maxPatchBytes {
		return "", nil, opts, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("a patch of pods/ephemeralcontainers is limited to %d bytes", maxPatchBytes))
	}
	return pt, patch, opts, nil
}

// ephemeralOnly applies patch to pod locally and refuses it if it changes anything but
// spec.ephemeralContainers; it returns the ephemeral containers the patch adds, and the pod patched. kube-apiserver's
// ephemeralcontainers subresource ignores the other fields anyway, but exec-proxy applies the patch
// with its own identity, whose rights are wider than the user's: what it sends on the user's behalf
// is bounded here, not only by kube-apiserver's strategy for the subresource.
func ephemeralOnly(pod *corev1.Pod, pt types.PatchType, patch []byte) ([]corev1.EphemeralContainer, *corev1.Pod, error) {
	before, err := json.Marshal(pod)
	if err != nil {
		return nil, nil, apierrors.NewInternalError(fmt.Errorf("encoding pod %s/%s: %w", pod.Namespace, pod.Name, err))
	}
	var after []byte
	switch pt {
	case types.JSONPatchType:
		var p jsonpatch.Patch
		if p, err = jsonpatch.DecodePatch(patch); err == nil {
			after, err = p.Apply(before)
		}
	case types.MergePatchType:
		after, err = jsonpatch.MergePatch(before, patch)
	default:
		after, err = strategicpatch.StrategicMergePatch(before, patch, &corev1.Pod{})
	}
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the %s does not apply to pod %s: %v", pt, pod.Name, err))
	}
	var was, is map[string]any
	var patched corev1.Pod
	if err := json.Unmarshal(before, &was); err != nil {
		return nil, nil, apierrors.NewInternalError(fmt.Errorf("decoding pod %s/%s: %w", pod.Namespace, pod.Name, err))
	}
	if err := json.Unmarshal(after, &is); err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the patched pod is not an object: %v", err))
	}
	if err := json.Unmarshal(after, &patched); err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the patched pod is not a pod: %v", err))
	}
	for _, m := range []map[string]any{was, is} {
		if spec, ok := m["spec"].(map[string]any); ok {
			delete(spec, "ephemeralContainers")
		}
	}
	if changed := changedFields("", was, is); len(changed) > 0 {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf(
			"a patch of pods/ephemeralcontainers through exec-proxy may change only spec.ephemeralContainers; this one changes %s", strings.Join(changed, ", ")))
	}
	existing := map[string]bool{}
	for _, c := range pod.Spec.EphemeralContainers {
		existing[c.Name] = true
	}
	var added []corev1.EphemeralContainer
	for _, c := range patched.Spec.EphemeralContainers {
		if !existing[c.Name] {
			added = append(added, c)
		}
	}
	return added, &patched, nil
}

// changedFields lists the paths, under prefix, where a and b differ, at most a few.
func changedFields(prefix string, a, b map[string]any) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var changed []string
	for _, k := range sortedKeys(keys) {
		path := strings.TrimPrefix(prefix+"."+k, ".")
		am, aok := a[k].(map[string]any)
		bm, bok := b[k].(map[string]any)
		switch {
		case aok && bok:
			changed = append(changed, changedFields(path, am, bm)...)
		case !reflect.DeepEqual(a[k], b[k]):
			changed = append(changed, path)
		}
		if len(changed) >= 5 {
			return changed[:5]
		}
	}
	return changed
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// recordEphemeral logs, and records in the session audit, each ephemeral container the patch adds,
// as the user's, with kube-apiserver's answer.
func (h *Handler) recordEphemeral(req *http.Request, info *apirequest.RequestInfo, added []corev1.EphemeralContainer, opts metav1.PatchOptions, err error) error {
	code, message := int32(0), ""
	if err != nil {
		status := apierrors.NewInternalError(err).Status()
		if s, ok := err.(apierrors.APIStatus); ok {
			status = s.Status()
		}
		code, message = status.Code, status.Message
	}
	var who authnv1.UserInfo
	if u, ok := apirequest.UserFrom(req.Context()); ok {
		who = authz.UserInfo(u)
	}
	logger, msg := klog.FromContext(req.Context()), "Ephemeral container asked for a user"
	if err != nil {
		msg = "Ephemeral container refused by kube-apiserver"
	}
	for i := range added {
		c := &added[i]
		logger.Info(msg, "user", who.Username, "groups", who.Groups, "pod", klog.KRef(info.Namespace, info.Name),
			"container", c.Name, "image", c.Image, "command", c.Command, "args", c.Args, "dryRun", opts.DryRun, "code", code, "message", message)
		if len(opts.DryRun) == 0 {
			if err := h.Audit.EphemeralContainer(req, who, info.Namespace, info.Name, c, code, message); err != nil {
				return err
			}
		}
	}
	return nil
}
