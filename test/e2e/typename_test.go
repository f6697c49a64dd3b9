//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// workloads are objects of every kind kubectl finds a pod for, all selecting app=web: they select
// the test's own pod. They ask for no pods (replicas 0, a suspended Job), and their image is never
// pulled, for the local cluster runs the Deployment and ReplicaSet controllers now; it runs no
// StatefulSet, DaemonSet, ReplicationController or Job controller.
const workloads = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec: {replicas: 0, selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: main, image: x, imagePullPolicy: Never}]}}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: demo}
spec: {replicas: 0, serviceName: web, selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: main, image: x, imagePullPolicy: Never}]}}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: web, namespace: demo}
spec: {selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: main, image: x, imagePullPolicy: Never}]}}}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web, namespace: demo}
spec: {replicas: 0, selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: main, image: x, imagePullPolicy: Never}]}}}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: web, namespace: demo}
spec: {replicas: 0, selector: {app: web}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: main, image: x, imagePullPolicy: Never}]}}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: web, namespace: demo}
spec: {suspend: true, manualSelector: true, selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {restartPolicy: Never, containers: [{name: main, image: x, imagePullPolicy: Never}]}}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: http}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: empty, namespace: demo}
spec: {replicas: 0, selector: {matchLabels: {app: empty}}, template: {metadata: {labels: {app: empty}}, spec: {containers: [{name: main, image: x, imagePullPolicy: Never}]}}}
`

// nobodyExecRole lets the user "nobody" read deployments and pods and exec, but not list pods.
const nobodyExecRole = `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: typename-nobody, namespace: demo}
rules:
- {apiGroups: [apps], resources: [deployments], verbs: [get]}
- {apiGroups: [""], resources: [pods], verbs: [get]}
- {apiGroups: [""], resources: [pods/exec], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: typename-nobody, namespace: demo}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: typename-nobody}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: nobody}]
`

func setupWorkloads(t *testing.T) {
	t.Helper()
	// web-1 gets a controller of its own, a ConfigMap, before it gets the label: the ReplicaSet
	// controller, which the local cluster runs, adopts an orphan pod its selector matches, and at
	// replicas 0 deletes it.
	admin(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-owner, namespace: demo}\n", "apply", "-f", "-")
	t.Cleanup(func() { admin(t, "", "-n", "demo", "delete", "configmap", "web-owner", "--ignore-not-found") })
	owner := admin(t, "", "-n", "demo", "get", "configmap", "web-owner", "-o", "jsonpath={.metadata.uid}")
	runBusyboxPod(t, "web-1", "", "    name: main\n    command: [sh, -c, \"mkdir -p /tmp/www && echo web-1 >/tmp/www/index.html && "+
		"httpd -p 8080 -h /tmp/www && exec sleep 2147483647\"]\n    ports: [{containerPort: 8080, name: http}]\n")
	admin(t, "", "-n", "demo", "patch", "pod", "web-1", "--type=merge", "-p",
		fmt.Sprintf(`{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"web-owner","uid":%q,"controller":true}]}}`, owner))
	admin(t, "", "-n", "demo", "label", "pod", "web-1", "app=web")
	admin(t, workloads, "apply", "-f", "-")
	t.Cleanup(func() { admin(t, workloads, "delete", "--ignore-not-found", "-f", "-") })
}

// TestTypeNameTargets: kubectl exec and port-forward with a TYPE/NAME target find the object's pod
// through the route, with every kubectl.
func TestTypeNameTargets(t *testing.T) {
	setupWorkloads(t)
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			for _, target := range []string{"deploy/web", "sts/web", "ds/web", "rs/web", "rc/web", "job/web", "svc/web", "deployment.apps/web"} {
				res := c.kubectl(t, viaExecProxy, "admin", "", "-n", "demo", "exec", target, "--", "cat", "/tmp/www/index.html")
				if res.code != 0 || res.stdout != "web-1\n" {
					t.Errorf("exec %s: exit %d, %q, %s", target, res.code, res.stdout, res.stderr)
				}
			}
			s := c.start(t, viaExecProxy, "admin", "-n", "demo", "port-forward", "svc/web", ":80")
			s.waitFor(t, "Forwarding from 127.0.0.1:")
			port := forwarding.FindStringSubmatch(s.output())[1]
			if body := httpGet(t, "http://127.0.0.1:"+port+"/index.html"); body != "web-1\n" {
				t.Errorf("GET through port-forward svc/web = %q", body)
			}
		})
	}
}

// TestTypeNameAuthorizedAsUser: with --route-pass-through=false, exec-proxy answers the reads kubectl
// makes to resolve TYPE/NAME itself, each authorized as the user, so its own read rights never show
// a user more than they could read themselves. (With pass-through, kube-apiserver answers them as the
// user: TestOneContext.)
func TestTypeNameAuthorizedAsUser(t *testing.T) {
	restartExecProxy(t, "--route-pass-through=false")
	setupWorkloads(t)
	admin(t, nobodyExecRole, "apply", "-f", "-")
	t.Cleanup(func() { admin(t, nobodyExecRole, "delete", "--ignore-not-found", "-f", "-") })
	cases := []struct {
		user, target string
		want         string
	}{
		// ns-user may exec in demo, and list pods, but not read deployments.
		{"ns-user", "deploy/web", `User "ns-user" cannot get resource "deployments" in API group "apps" in the namespace "demo"`},
		{"ns-user", "svc/web", `User "ns-user" cannot get resource "services" in API group "" in the namespace "demo"`},
		// nobody may read the deployment and exec, but not list pods.
		{"nobody", "deploy/web", `User "nobody" cannot list resource "pods" in API group "" in the namespace "demo"`},
		{"nobody", "sts/web", `User "nobody" cannot get resource "statefulsets" in API group "apps"`},
		{"admin", "deploy/empty", `no pod in namespace "demo" matches app=empty`},
		{"admin", "deploy/nope", `deployments.apps "nope" not found`},
	}
	for _, tc := range cases {
		t.Run(tc.user+" "+tc.target, func(t *testing.T) {
			res := clients[1].kubectl(t, viaExecProxy, tc.user, "", "-n", "demo", "exec", tc.target, "--", "true")
			if res.code == 0 || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %q", res.code, res.stderr, tc.want)
			}
		})
	}
	// The same users reach the pod by its name: the refusals above were the reads, not the exec.
	for _, user := range []string{"ns-user", "nobody"} {
		if res := clients[1].kubectl(t, viaExecProxy, user, "", "-n", "demo", "exec", "web-1", "--", "cat", "/tmp/www/index.html"); res.stdout != "web-1\n" {
			t.Errorf("%s: exec web-1: exit %d, %q, %s", user, res.code, res.stdout, res.stderr)
		}
	}
}
