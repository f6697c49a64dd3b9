//go:build e2e

package e2e

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/exec-proxy/exec-proxy/internal/testcert"
)

// A ValidatingAdmissionPolicy that denies commands starting with vapdeny-, and one that denies
// every exec, attach and port-forward into namespaces labelled e2e-no-sessions=true.
const admissionPolicies = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: e2e-deny-command}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CONNECT], resources: [pods/exec]}
  validations:
  - expression: "!object.command.exists(c, c.startsWith('vapdeny-'))"
    messageExpression: "'commands starting with vapdeny- are not run here, ' + request.userInfo.username"
    reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: e2e-deny-command}
spec: {policyName: e2e-deny-command, validationActions: [Deny]}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: e2e-no-sessions}
spec:
  failurePolicy: Fail
  matchConstraints:
    namespaceSelector: {matchLabels: {e2e-no-sessions: "true"}}
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CONNECT], resources: [pods/exec, pods/attach, pods/portforward]}
  validations:
  - expression: "false"
    message: "no sessions in this namespace"
    reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: e2e-no-sessions}
spec: {policyName: e2e-no-sessions, validationActions: [Deny]}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: e2e-warn}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CONNECT], resources: [pods/exec]}
  validations:
  - expression: "!object.command.exists(c, c.startsWith('vapwarn-'))"
    message: "vapwarn- commands are frowned upon"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: e2e-warn}
spec: {policyName: e2e-warn, validationActions: [Warn]}
`

// TestAdmissionParity: the cluster's ValidatingAdmissionPolicies and validating webhooks decide
// sessions through exec-proxy as they do on kube-apiserver's own path: the same answer, printed
// the same way, for kubectl 1.28 (SPDY) and 1.33 (WebSocket); exec-proxy's records say which
// policy or webhook decided.
func TestAdmissionParity(t *testing.T) {
	applyObjects(t, admissionPolicies)
	routes := []route{viaAPIServer, viaExecProxy}
	// Both paths read the policies from informers: wait until each denies.
	for _, rt := range routes {
		eventually(t, 30*time.Second, "the policies to reach "+rt.name, func() bool {
			res := clients[1].kubectl(t, rt, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "echo", "vapdeny-probe")
			return strings.Contains(res.stderr, "vapdeny- are not run here")
		})
	}

	for _, c := range clients[:2] {
		t.Run(c.name, func(t *testing.T) {
			t.Run("a command denied", func(t *testing.T) {
				m := marker(t)
				got := map[string]string{}
				for _, rt := range routes {
					res := c.kubectl(t, rt, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "echo", "vapdeny-"+m)
					if res.code == 0 {
						t.Fatalf("%s ran a denied command: %s", rt.name, res.stdout)
					}
					got[rt.name] = res.stderr
				}
				want := `Error from server (Forbidden): pods "demo" is forbidden: ValidatingAdmissionPolicy 'e2e-deny-command' with binding 'e2e-deny-command' denied request: commands starting with vapdeny- are not run here, admin`
				for name, stderr := range got {
					if !strings.Contains(stderr, want) {
						t.Errorf("%s printed %q, want %q", name, stderr, want)
					}
				}
				rec := sessionRecords(t, m, map[string]int{"refused": attempts(c)})["refused"][0]
				if rec.ResponseStatus == nil || rec.ResponseStatus.Code != http.StatusForbidden ||
					rec.Annotations[annotation+"admission-denied-by"] != "ValidatingAdmissionPolicy/e2e-deny-command/e2e-deny-command" {
					t.Errorf("refused record: status %+v, annotations %v", rec.ResponseStatus, rec.Annotations)
				}
			})
			t.Run("a namespace denied", func(t *testing.T) {
				admin(t, "", "label", "namespace", "team-b", "e2e-no-sessions=true")
				t.Cleanup(func() { admin(t, "", "label", "namespace", "team-b", "e2e-no-sessions-") })
				for _, rt := range routes {
					eventually(t, 30*time.Second, "the namespace label to deny on "+rt.name, func() bool {
						res := c.kubectl(t, rt, "admin", "", "-n", "team-b", "exec", "other", "--", "echo", "x")
						return res.code != 0 && strings.Contains(res.stderr, "ValidatingAdmissionPolicy 'e2e-no-sessions' with binding 'e2e-no-sessions' denied request: no sessions in this namespace")
					})
				}
			})
			t.Run("a warning", func(t *testing.T) {
				m := marker(t)
				for _, rt := range routes {
					res := c.kubectl(t, rt, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "echo", "vapwarn-"+m)
					if res.code != 0 {
						t.Fatalf("%s: a Warn policy refused: %s", rt.name, res.stderr)
					}
					// kubectl prints no warning of an upgraded session on either path: client-go
					// reads warnings only from the responses of its REST client.
					t.Logf("%s printed on stderr: %q", rt.name, res.stderr)
				}
				start := sessionRecords(t, m, map[string]int{"start": 1})["start"][0]
				if w := start.Annotations[annotation+"admission-warnings"]; !strings.Contains(w, "vapwarn- commands are frowned upon") {
					t.Errorf("start record's admission-warnings %q", w)
				}
			})
		})
	}

	t.Run("a policy with params", func(t *testing.T) {
		// The denied commands are a ConfigMap's keys; exec-proxy reads the params as the cluster's
		// admission does, with read rights on them in all namespaces (the plugin watches the kind
		// cluster-wide; an admin grants them with the policy). Without them the policy refuses
		// every session it matches: its params are "not yet synced".
		applyObjects(t, `apiVersion: v1
kind: ConfigMap
metadata: {name: e2e-denied-commands, namespace: demo}
data: {paramdeny-cmd: "yes"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: e2e-admission-params}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: e2e-admission-params}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: e2e-admission-params}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:exec-proxy"}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: e2e-params}
spec:
  failurePolicy: Fail
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CONNECT], resources: [pods/exec]}
  validations:
  - expression: "!object.command.exists(c, c in params.data)"
    messageExpression: "'a command listed in ConfigMap ' + params.metadata.name + ' is not run here'"
    reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: e2e-params}
spec:
  policyName: e2e-params
  validationActions: [Deny]
  paramRef: {name: e2e-denied-commands, parameterNotFoundAction: Deny}
`)
		// Both paths refuse the listed command, naming the policy and binding. What they say is
		// not always the same: kube-apiserver 1.34 has answered that it found no params (its
		// parameterNotFoundAction) while exec-proxy, running the same plugin, read the ConfigMap and
		// gave the policy's own message; and once both answered "no params found". Either way the
		// session is refused, as failurePolicy Fail and parameterNotFoundAction Deny ask.
		for _, rt := range routes {
			var answer string
			eventually(t, 30*time.Second, "the policy with params to refuse on "+rt.name, func() bool {
				res := clients[1].kubectl(t, rt, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "paramdeny-cmd")
				answer = res.stderr
				return res.code != 0 && strings.Contains(res.stderr, "ValidatingAdmissionPolicy 'e2e-params' with binding 'e2e-params' denied request")
			})
			t.Logf("%s answered: %s", rt.name, answer)
		}
	})

	t.Run("admission off", func(t *testing.T) {
		restartExecProxy(t, "--admission=none")
		m := marker(t)
		if res := clients[1].kubectl(t, viaExecProxy, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "echo", "vapdeny-"+m); res.code != 0 {
			t.Errorf("with --admission=none a policy still refused: %s", res.stderr)
		}
	})
}

// TestAdmissionWebhook: a real validating webhook sees the CONNECT review, with the options
// object, from both paths and denies one case; a mutating webhook denies one and changes the
// command of another, which then runs, on both paths; with the validating webhook down,
// failurePolicy Fail refuses and Ignore lets sessions run, on both paths.
func TestAdmissionWebhook(t *testing.T) {
	hook := startWebhook(t)
	register := func(failurePolicy string) {
		applyObjects(t, fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: e2e-webhook}
webhooks:
- name: sessions.e2e.execproxy.dev
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: %s
  timeoutSeconds: 3
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: demo}}
  rules:
  - {apiGroups: [""], apiVersions: [v1], operations: [CONNECT], resources: [pods/exec, pods/attach]}
  clientConfig: {url: "%s", caBundle: %s}
`, failurePolicy, hook.url, hook.caBundle))
	}
	register("Fail")
	routes := []route{viaAPIServer, viaExecProxy}
	for _, rt := range routes {
		eventually(t, 30*time.Second, "the webhook to be called from "+rt.name, func() bool {
			res := clients[1].kubectl(t, rt, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "echo", "hookdeny-probe")
			return strings.Contains(res.stderr, "denied by the e2e webhook")
		})
	}
	for _, c := range clients[:2] {
		t.Run(c.name, func(t *testing.T) {
			m := marker(t)
			for _, rt := range routes {
				res := c.kubectl(t, rt, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "echo", "hookdeny-"+m)
				want := `admission webhook "sessions.e2e.execproxy.dev" denied the request: denied by the e2e webhook: hookdeny-` + m
				if res.code == 0 || !strings.Contains(res.stderr, want) {
					t.Errorf("%s: exit %d %q, want %q", rt.name, res.code, res.stderr, want)
				}
				if res := c.kubectl(t, rt, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "echo", "allowed-"+m); res.code != 0 {
					t.Errorf("%s: an allowed command: %s", rt.name, res.stderr)
				}
			}
			// The webhook saw each path's review: CONNECT of pods/exec with the options object.
			reviews := hook.reviewsWith("hookdeny-" + m)
			if len(reviews) < 2 {
				t.Fatalf("the webhook saw %d reviews of the denied command, want one from each path at least", len(reviews))
			}
			for _, r := range reviews {
				var opts corev1.PodExecOptions
				if err := json.Unmarshal(r.Object.Raw, &opts); err != nil || r.Operation != admissionv1.Connect || r.Resource.Resource != "pods" ||
					r.SubResource != "exec" || r.Kind.Kind != "PodExecOptions" || r.Name != "demo" || r.UserInfo.Username != "admin" || opts.Container != "main" {
					t.Errorf("review: %s %v/%s %s %s by %s, options %+v (%v)", r.Operation, r.Resource, r.SubResource, r.Kind, r.Name, r.UserInfo.Username, opts, err)
				}
			}
			rec := sessionRecords(t, "hookdeny-"+m, map[string]int{"refused": attempts(c)})["refused"][0]
			if by := rec.Annotations[annotation+"admission-denied-by"]; by != "AdmissionWebhook/sessions.e2e.execproxy.dev" {
				t.Errorf("refused record names no webhook: %v", rec.Annotations)
			}
		})
	}

	t.Run("mutating webhook", func(t *testing.T) {
		applyObjects(t, fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: e2e-mutating-webhook}
webhooks:
- name: mutate.e2e.execproxy.dev
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 3
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: demo}}
  rules:
  - {apiGroups: [""], apiVersions: [v1], operations: [CONNECT], resources: [pods/exec]}
  clientConfig: {url: "%s", caBundle: %s}
`, strings.TrimSuffix(hook.url, "/validate")+"/mutate", hook.caBundle))
		for _, rt := range routes {
			eventually(t, 30*time.Second, "the mutating webhook to be called from "+rt.name, func() bool {
				res := clients[1].kubectl(t, rt, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "echo", "mutdeny-probe")
				return strings.Contains(res.stderr, "denied by the e2e mutating webhook")
			})
		}
		for _, c := range clients[:2] {
			m := marker(t)
			for _, rt := range routes {
				res := c.kubectl(t, rt, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "echo", "mutdeny-"+m)
				want := `admission webhook "mutate.e2e.execproxy.dev" denied the request: denied by the e2e mutating webhook: mutdeny-` + m
				if res.code == 0 || !strings.Contains(res.stderr, want) {
					t.Errorf("%s %s: a mutating webhook's denial: exit %d %q, want %q", c.name, rt.name, res.code, res.stderr, want)
				}
				res = c.kubectl(t, rt, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "mutate-"+m)
				if res.code != 0 || res.stdout != "mutated-"+m+"\n" {
					t.Errorf("%s %s: a mutated command: exit %d %q %s, want it to print mutated-%s", c.name, rt.name, res.code, res.stdout, res.stderr, m)
				}
			}
			// exec-proxy's records say what ran: the mutated command.
			rec := recordsWhere(t, "the mutated session's records", func(ev auditv1.Event) bool {
				return strings.Contains(ev.Annotations[annotation+"command"], "mutated-"+m)
			}, map[string]int{"start": 1, "end": 1})
			if got := rec["start"][0].Annotations[annotation+"command"]; got != `["echo","mutated-`+m+`"]` {
				t.Errorf("%s: the start record's command %s", c.name, got)
			}
		}
	})

	t.Run("webhook down", func(t *testing.T) {
		hook.close()
		for _, rt := range routes {
			res := clients[1].kubectl(t, rt, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "echo", "x")
			if res.code == 0 || !strings.Contains(res.stderr, `failed calling webhook "sessions.e2e.execproxy.dev"`) {
				t.Errorf("%s with failurePolicy Fail and the webhook down: exit %d %s", rt.name, res.code, res.stderr)
			}
		}
		register("Ignore")
		for _, rt := range routes {
			eventually(t, 30*time.Second, "failurePolicy Ignore to reach "+rt.name, func() bool {
				return clients[1].kubectl(t, rt, "admin", "", "-n", "demo", "exec", "demo", "-c", "main", "--", "echo", "x").code == 0
			})
		}
	})
}

// applyObjects applies manifests as the cluster admin and deletes them when the test ends.
func applyObjects(t *testing.T, manifests string) {
	t.Helper()
	admin(t, manifests, "apply", "-f", "-")
	t.Cleanup(func() { admin(t, manifests, "delete", "--ignore-not-found", "-f", "-") })
}

// webhook is a validating admission webhook on loopback, with a CA of its own.
type webhook struct {
	url, caBundle string
	srv           *http.Server
	mu            sync.Mutex
	reviews       []admissionv1.AdmissionRequest
}

func startWebhook(t *testing.T) *webhook {
	t.Helper()
	ca := testcert.NewCA(t, "e2e webhook CA")
	cert := ca.Sign(t, testcert.Leaf{CommonName: "e2e-webhook", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	h := &webhook{url: "https://" + ln.Addr().String() + "/validate",
		caBundle: pemBase64(ca)}
	h.srv = &http.Server{Handler: http.HandlerFunc(h.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = h.srv.Serve(ln) }()
	t.Cleanup(h.close)
	return h
}

func (h *webhook) close() { _ = h.srv.Close() }

func (h *webhook) serve(w http.ResponseWriter, req *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<20)).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.reviews = append(h.reviews, *review.Request)
	h.mu.Unlock()
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	var opts corev1.PodExecOptions
	_ = json.Unmarshal(review.Request.Object.Raw, &opts)
	mutating := req.URL.Path == "/mutate"
	for _, c := range opts.Command {
		switch {
		case !mutating && strings.HasPrefix(c, "hookdeny-"):
			resp.Allowed = false
			resp.Result = &metav1.Status{Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: "denied by the e2e webhook: " + c}
		case mutating && strings.HasPrefix(c, "mutdeny-"):
			resp.Allowed = false
			resp.Result = &metav1.Status{Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: "denied by the e2e mutating webhook: " + c}
		case mutating && strings.HasPrefix(c, "mutate-"):
			// The session runs another command than the one asked for, on both paths.
			patch, _ := json.Marshal([]map[string]any{{"op": "replace", "path": "/command", "value": []string{"echo", "mutated-" + strings.TrimPrefix(c, "mutate-")}}})
			pt := admissionv1.PatchTypeJSONPatch
			resp.Patch, resp.PatchType = patch, &pt
		}
	}
	review.Response, review.Request = resp, nil
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(review)
}

// reviewsWith are the reviews whose object's command has arg.
func (h *webhook) reviewsWith(arg string) []admissionv1.AdmissionRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []admissionv1.AdmissionRequest
	for _, r := range h.reviews {
		if strings.Contains(string(r.Object.Raw), `"`+arg+`"`) {
			out = append(out, r)
		}
	}
	return out
}

// pemBase64 is ca's certificate as a caBundle: base64 of the PEM.
func pemBase64(ca *testcert.CA) string {
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
	return base64.StdEncoding.EncodeToString(pemBytes)
}
