//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// kubectlCached is c.kubectl with a discovery cache of its own, so no answer cached on one path or
// by another run stands in for what this path answers.
func (c client) kubectlCached(t *testing.T, rt route, user, cache, stdin string, args ...string) result {
	t.Helper()
	return c.kubectl(t, rt, user, stdin, append([]string{"--cache-dir", cache}, args...)...)
}

// streamFor runs kubectl for d, then stops it, and returns what it printed by then and whether it
// ended by itself: for watches and followed logs, which do not.
func (c client) streamFor(t *testing.T, rt route, user, cache string, d time.Duration, args ...string) (string, string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.path(), append([]string{"--kubeconfig", kubeconfig(user + rt.suffix), "--cache-dir", cache}, args...)...)
	cmd.Env = append(os.Environ(), c.env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	_ = cmd.Run()
	return out.String(), errOut.String(), ctx.Err() == nil
}

// TestOneContext: with the route's context, every kubectl command answers as on kube-apiserver's own
// path, for a cluster-admin and for a user with rights in one namespace (whose refusals are the same
// RBAC messages), with kubectl 1.28 and 1.33; while exec, attach, port-forward and cp still go
// through exec-proxy (the other tests). kube-apiserver's audit names the real user.
func TestOneContext(t *testing.T) {
	pod := debugTarget(t, "onectx-")
	apply := func(name string) string {
		return fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":"demo"},"data":{"a":"1"}}`, name)
	}
	for _, c := range clients[:2] {
		for _, user := range []string{"admin", "ns-user"} {
			t.Run(c.name+"/"+user, func(t *testing.T) {
				caches := map[route]string{viaExecProxy: t.TempDir(), viaAPIServer: t.TempDir()}
				// Each path's run of a command; @NAME@ stands for the object a command changes, one per path.
				run := func(rt route, stdin string, args ...string) result {
					name := "onectx-" + strings.ReplaceAll(c.name, ".", "-") + "-" + user + rt.suffix
					for i, a := range args {
						args[i] = strings.ReplaceAll(a, "@NAME@", name)
					}
					stdin = strings.ReplaceAll(stdin, "@NAME@", name)
					res := c.kubectlCached(t, rt, user, caches[rt], stdin, args...)
					res.stdout = strings.ReplaceAll(res.stdout, name, "@NAME@")
					res.stderr = strings.ReplaceAll(res.stderr, name, "@NAME@")
					return res
				}
				cases := []struct {
					name  string
					stdin string
					args  []string
				}{
					{"get", "", []string{"-n", "demo", "get", "pods", "demo", "echo", "-o", "custom-columns=NAME:.metadata.name,PHASE:.status.phase"}},
					{"get one", "", []string{"-n", "demo", "get", "pod", "demo", "-o", "jsonpath={.spec.nodeName}"}},
					{"get in all namespaces", "", []string{"get", "pods", "-A", "-o", "name"}},
					{"get what is not there", "", []string{"-n", "demo", "get", "pod", "nope"}},
					{"get of another kind", "", []string{"-n", "kube-system", "get", "configmaps", "-o", "name"}},
					{"logs", "", []string{"-n", "demo", "logs", "echo"}},
					{"auth can-i", "", []string{"-n", "demo", "auth", "can-i", "create", "pods", "--subresource=exec"}},
					{"auth can-i elsewhere", "", []string{"auth", "can-i", "list", "secrets", "-A"}},
					{"api-resources", "", []string{"api-resources", "--api-group=apps", "-o", "name"}},
					{"explain", "", []string{"explain", "pod.spec.nodeName"}},
					{"top", "", []string{"-n", "demo", "top", "pod"}},
					{"events", "", []string{"-n", "demo", "events", "--for", "pod/nope"}},
					{"impersonation", "", []string{"-n", "demo", "--as", "admin", "get", "pods", "-o", "name"}},
					{"apply", apply("@NAME@"), []string{"apply", "-f", "-"}},
					{"apply again", apply("@NAME@"), []string{"apply", "-f", "-"}},
					{"patch", "", []string{"-n", "demo", "patch", "configmap", "@NAME@", "-p", `{"data":{"b":"2"}}`}},
					{"get it", "", []string{"-n", "demo", "get", "configmap", "@NAME@", "-o", "jsonpath={.data}"}},
					{"delete", "", []string{"-n", "demo", "delete", "configmap", "@NAME@"}},
					{"delete a pod, dry run", "", []string{"-n", "demo", "delete", "pod", "demo", "--dry-run=server"}},
					{"debug", "", []string{"-n", "demo", "debug", pod, "--image=registry.local/busybox:local", "--image-pull-policy=Never", "-c", "@NAME@", "--", "true"}},
				}
				for _, tc := range cases {
					direct := run(viaAPIServer, tc.stdin, append([]string(nil), tc.args...)...)
					routed := run(viaExecProxy, tc.stdin, append([]string(nil), tc.args...)...)
					if tc.name == "impersonation" && routed != direct && apiServerMinor(t) >= 36 &&
						sameRefusalButRoute(routed, direct, `impersonate-on:user-info:list resource "pods" in API group "" in the namespace "demo"`) {
						// kube-apiserver's constrained impersonation (1.36 on) names the request's
						// resource in its refusal: routes/proxy on the route (docs/route.md).
						continue
					}
					if routed != direct {
						t.Errorf("%s: the route answered exit %d\n%s%s\nkube-apiserver answered exit %d\n%s%s",
							tc.name, routed.code, routed.stdout, routed.stderr, direct.code, direct.stdout, direct.stderr)
					}
				}
				t.Run("watch and logs -f stream", func(t *testing.T) {
					// What each prints first: the pods as listed, the log so far. Events after
					// that depend on when each ran.
					pods := run(viaAPIServer, "", "-n", "demo", "get", "pods", "-o", "name").stdout
					pods = pods[:strings.Index(pods, "\n")+1] // the first, whatever others come and go
					for _, args := range [][]string{
						{"-n", "demo", "get", "pods", "-w", "-o", "name"},
						{"-n", "demo", "logs", "-f", "echo"},
					} {
						first := pods
						if args[2] == "logs" {
							first = "ready\n"
						}
						var refusals []string
						for _, rt := range []route{viaAPIServer, viaExecProxy} {
							out, errOut, ended := c.streamFor(t, rt, user, caches[rt], 4*time.Second, args...)
							switch {
							case user == "admin" && (ended || !strings.HasPrefix(out, first)):
								t.Errorf("%v via %s: ended by itself %v, printed %q %s; want it held, starting with %q", args, rt.name, ended, out, errOut, first)
							case user == "ns-user" && !ended:
								t.Errorf("%v via %s: held, printed %q %s; want a refusal", args, rt.name, out, errOut)
							}
							refusals = append(refusals, errOut)
						}
						if user == "ns-user" && refusals[0] != refusals[1] {
							t.Errorf("%v: kube-apiserver refused with %q, the route with %q", args, refusals[0], refusals[1])
						}
					}
				})
			})
		}
	}
	t.Run("kube-apiserver's audit names the user", func(t *testing.T) {
		found := map[string]bool{}
		for _, ev := range auditEvents(t, "kube-apiserver-audit.log") {
			if ev.ObjectRef == nil || ev.ObjectRef.Resource != "configmaps" || !strings.HasPrefix(ev.ObjectRef.Name, "onectx-") || !strings.HasSuffix(ev.ObjectRef.Name, "-admin") {
				continue
			}
			// Passed through: exec-proxy's identity, acting as the user, who alone is authorized.
			if ev.ImpersonatedUser == nil || ev.ImpersonatedUser.Username != "admin" || ev.User.Username != "system:exec-proxy" {
				t.Errorf("%s %s: user %q impersonating %+v", ev.Verb, ev.RequestURI, ev.User.Username, ev.ImpersonatedUser)
			}
			found[ev.Verb] = true
		}
		for _, verb := range []string{"create", "patch", "get", "delete"} {
			if !found[verb] {
				t.Errorf("no %s of the route's configmaps in kube-apiserver's audit (found %v)", verb, found)
			}
		}
	})
}

// sameRefusalButRoute: kube-apiserver refused both runs, the direct one saying want, the route's
// saying the same of the route (the resource impersonation is asked on through it), for the same user.
func sameRefusalButRoute(routed, direct result, want string) bool {
	m := regexp.MustCompile(`User "([^"]+)" cannot `).FindStringSubmatch(direct.stderr)
	if m == nil || direct.code != 1 || routed.code != 1 || routed.stdout != direct.stdout || !strings.Contains(direct.stderr, want) {
		return false
	}
	return routed.stderr == `Error from server (Forbidden): routes.execproxy.dev "kube" is forbidden: User "`+m[1]+
		`" cannot impersonate-on:user-info:get resource "routes/proxy" in API group "execproxy.dev" at the cluster scope`+"\n"
}
