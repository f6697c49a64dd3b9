package kuberoute

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/authentication/user"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	auditfake "k8s.io/apiserver/plugin/pkg/audit/fake"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// asAlice serves h as the chain would once it has authenticated and authorized alice.
func asAlice(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.ServeHTTP(w, req.WithContext(apirequest.WithUser(req.Context(), &user.DefaultInfo{Name: "alice", Groups: []string{"devs"}})))
	})
}

// kubectlDebugPatch is the patch kubectl debug sends (debugByEphemeralContainer): a strategic merge
// patch from the pod to the pod with one more ephemeral container.
func kubectlDebugPatch(t *testing.T, pod *corev1.Pod, c corev1.EphemeralContainer) []byte {
	t.Helper()
	debug := pod.DeepCopy()
	debug.Spec.EphemeralContainers = append(debug.Spec.EphemeralContainers, c)
	before, _ := json.Marshal(pod)
	after, _ := json.Marshal(debug)
	patch, err := strategicpatch.CreateTwoWayMergePatch(before, after, pod)
	if err != nil {
		t.Fatal(err)
	}
	return patch
}

func TestEphemeralContainers(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}}
	debugger := corev1.EphemeralContainer{TargetContainerName: "app", EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: "debugger-abc", Image: "registry.local/busybox:local", Command: []string{"sh"}, Stdin: true, TTY: true}}
	kubectl := string(kubectlDebugPatch(t, pod, debugger))
	addJSON := `[{"op":"add","path":"/spec/ephemeralContainers","value":[{"name":"debugger-abc","image":"registry.local/busybox:local"}]}]`
	admissionDenied := apierrors.NewForbidden(corev1.Resource("pods/ephemeralcontainers"), "p", errors.New("denied by policy no-debug"))
	const base = "/api/v1/namespaces/ns/pods/p"
	cases := []struct {
		name, method, path, contentType, body string
		apiserverErr                          error // kube-apiserver's answer to exec-proxy's patch
		code                                  int
		message                               string
		patched                               bool   // exec-proxy sent the patch, as it came
		record                                string // the audit record's container, if one is written
	}{
		{"kubectl debug", "PATCH", base + "/ephemeralcontainers", "application/strategic-merge-patch+json", kubectl, nil, 200, `"debugger-abc"`, true, "debugger-abc"},
		{"JSON patch", "PATCH", base + "/ephemeralcontainers", "application/json-patch+json", addJSON, nil, 200, `"debugger-abc"`, true, "debugger-abc"},
		{"dry run", "PATCH", base + "/ephemeralcontainers?dryRun=All", "application/strategic-merge-patch+json", kubectl, nil, 200, `"debugger-abc"`, true, ""},
		{"refused by kube-apiserver", "PATCH", base + "/ephemeralcontainers", "application/strategic-merge-patch+json", kubectl, admissionDenied, 403, "denied by policy no-debug", true, "debugger-abc"},
		{"a patch of spec.containers", "PATCH", base + "/ephemeralcontainers", "application/strategic-merge-patch+json",
			`{"spec":{"containers":[{"name":"app","image":"evil"}],"ephemeralContainers":[{"name":"d","image":"busybox"}]}}`, nil, 400, "changes spec.containers", false, ""},
		{"a merge patch of labels", "PATCH", base + "/ephemeralcontainers", "application/merge-patch+json", `{"metadata":{"labels":{"app":"db"}}}`, nil, 400, "changes metadata.labels", false, ""},
		{"a JSON patch of the node", "PATCH", base + "/ephemeralcontainers", "application/json-patch+json", `[{"op":"add","path":"/spec/nodeName","value":"n2"}]`, nil, 400, "changes spec.nodeName", false, ""},
		{"a JSON patch that does not apply", "PATCH", base + "/ephemeralcontainers", "application/json-patch+json", `[{"op":"replace","path":"/spec/nothing/x","value":1}]`, nil, 400, "does not apply", false, ""},
		{"too large", "PATCH", base + "/ephemeralcontainers", "application/merge-patch+json", `{"x":"` + strings.Repeat("a", maxPatchBytes) + `"}`, nil, 413, "limited to 1048576 bytes", false, ""},
		{"server-side apply", "PATCH", base + "/ephemeralcontainers", "application/apply-patch+yaml", "spec: {}", nil, 415, "must be one of", false, ""},
		{"no content type", "PATCH", base + "/ephemeralcontainers", "", kubectl, nil, 415, "must be one of", false, ""},
		{"pod not found", "PATCH", "/api/v1/namespaces/ns/pods/q/ephemeralcontainers", "application/strategic-merge-patch+json", kubectl, nil, 404, `pods \"q\" not found`, false, ""},
		{"PUT", "PUT", base + "/ephemeralcontainers", "application/json", "{}", nil, 405, "PUT is not allowed on pods/ephemeralcontainers", false, ""},
		{"GET", "GET", base + "/ephemeralcontainers", "", "", nil, 405, "GET is not allowed on pods/ephemeralcontainers", false, ""},
		{"another subresource", "PATCH", base + "/status", "application/strategic-merge-patch+json", kubectl, nil, 404, "is not served", false, ""},
		{"the pod itself", "PATCH", base, "application/strategic-merge-patch+json", kubectl, nil, 405, "PATCH is not allowed on pods", false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset(pod.DeepCopy())
			if tc.apiserverErr != nil {
				client.PrependReactor("patch", "pods", func(clienttesting.Action) (bool, runtime.Object, error) { return true, nil, tc.apiserverErr })
			}
			var events []*auditinternal.Event
			audit := sessionaudit.NewAuditor(&auditfake.Backend{OnRequest: func(ev []*auditinternal.Event) { events = append(events, ev...) }}, sessionaudit.FailClosed)
			h := asAlice(withRequestInfo(&Handler{Pods: fakePods{"ns/p": pod}, Client: ClientPods{Client: client}, Sessions: &fakeSessions{}, Audit: audit}))
			req := httptest.NewRequest(tc.method, api.RoutePrefix+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.message) {
				t.Errorf("got %d %.300s, want %d with %q", rec.Code, rec.Body, tc.code, tc.message)
			}
			if tc.code >= 400 {
				var st metav1.Status
				if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Kind != "Status" || int(st.Code) != tc.code {
					t.Errorf("not a Status with code %d: %.300s", tc.code, rec.Body)
				}
				if st.Code == 404 && st.Details == nil {
					t.Errorf("a 404 without details: kubectl debug reads Details.Name: %s", rec.Body)
				}
			}
			var sent []clienttesting.PatchAction
			for _, a := range client.Actions() {
				if p, ok := a.(clienttesting.PatchAction); ok {
					sent = append(sent, p)
				}
			}
			if !tc.patched {
				if len(sent) != 0 {
					t.Errorf("exec-proxy sent %d patches, want none", len(sent))
				}
			} else if len(sent) != 1 || sent[0].GetSubresource() != "ephemeralcontainers" || sent[0].GetName() != "p" ||
				sent[0].GetPatchType() != types.PatchType(tc.contentType) || string(sent[0].GetPatch()) != tc.body {
				t.Errorf("exec-proxy sent %+v, want the request's own patch of pods/ephemeralcontainers", sent)
			}
			// One record before kube-apiserver is asked (no answer yet), and a second with its
			// refusal when it refuses.
			var got []string
			for i, ev := range events {
				got = append(got, ev.Annotations[sessionaudit.AnnotationContainer])
				answered := i == 1
				if ev.User.Username != "alice" || (ev.ResponseStatus != nil) != answered || answered && ev.ResponseStatus.Code != int32(tc.code) {
					t.Errorf("record %d of %s, status %+v; want alice's, answered %v with %d", i, ev.User.Username, ev.ResponseStatus, answered, tc.code)
				}
			}
			want := []string{tc.record}
			if tc.patched && tc.code >= 400 {
				want = append(want, tc.record)
			}
			if tc.record == "" && len(got) != 0 || tc.record != "" && !reflect.DeepEqual(got, want) {
				t.Errorf("audit records of containers %q, want %q", got, want)
			}
		})
	}
}

func TestChangedFields(t *testing.T) {
	a := map[string]any{"metadata": map[string]any{"name": "p", "labels": map[string]any{"a": "1"}}, "spec": map[string]any{"x": 1.0}}
	cases := []struct {
		name string
		b    map[string]any
		want []string
	}{
		{"same", map[string]any{"metadata": map[string]any{"name": "p", "labels": map[string]any{"a": "1"}}, "spec": map[string]any{"x": 1.0}}, nil},
		{"a label", map[string]any{"metadata": map[string]any{"name": "p", "labels": map[string]any{"a": "2"}}, "spec": map[string]any{"x": 1.0}}, []string{"metadata.labels.a"}},
		{"a field added and one removed", map[string]any{"metadata": map[string]any{"name": "p", "labels": map[string]any{"a": "1"}}, "spec": map[string]any{"y": 1.0}, "status": "x"},
			[]string{"spec.x", "spec.y", "status"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := changedFields("", a, tc.b); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
