//go:build e2e

package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// endRecord waits for the end record of the session whose command carries m.
func endRecord(t *testing.T, m string) auditv1.Event {
	t.Helper()
	return sessionRecords(t, m, map[string]int{"start": 1, "end": 1})["end"][0]
}

// TestClientVanishes: a kubectl killed mid-session ends the session, recorded as client closed.
// (The command may still exit on its own as its stdin closes; the record keeps that exit code.)
func TestClientVanishes(t *testing.T) {
	for _, c := range []client{clients[0], clients[1]} {
		t.Run(c.name, func(t *testing.T) {
			m := marker(t)
			s := c.start(t, viaExecProxy, "admin", "exec", "-i", "demo", "-c", "main", "--", "sh", "-c", "echo holding-"+m+"; cat")
			s.waitFor(t, "holding-"+m)
			if err := s.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			a := endRecord(t, m).Annotations
			if a[annotation+"reason"] != "client closed" {
				t.Errorf("end record: %+v", a)
			}
		})
	}
}

// TestKubeletKilledMidSession: when the kubelet dies under a session, exec-proxy ends the session
// and closes the client's connection, and the end record says the kubelet disconnected, over SPDY
// and WebSocket. What kubectl then reports is its own affair: client-go reads an error stream cut
// short as success. The kubelet is started again afterwards.
func TestKubeletKilledMidSession(t *testing.T) {
	for _, c := range []client{clients[0], clients[1]} {
		t.Run(c.name, func(t *testing.T) {
			m := marker(t)
			s := c.start(t, viaExecProxy, "admin", "exec", "-i", "echo", "-c", "echo", "--", "sh", "-c", "echo holding-"+m+"; cat")
			s.waitFor(t, "holding-"+m)
			restartKubeletAfter(t, "node2")
			signalAndWait(t, "kubelet-node2", syscall.SIGKILL, 10*time.Second)
			a := endRecord(t, m).Annotations
			if a[annotation+"reason"] != "kubelet disconnected" || !strings.HasPrefix(a[annotation+"exit-code"], "unknown") {
				t.Errorf("end record: %+v", a)
			}
		})
	}
}

// restartKubeletAfter starts node's kubelet again when the test ends, and waits until it serves.
func restartKubeletAfter(t *testing.T, node string) {
	t.Cleanup(func() {
		cmd := exec.Command("hack/cluster/node.sh", "up", node)
		cmd.Dir = filepath.Join(clusterDir(), "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("restarting %s's kubelet: %v\n%s", node, err, out)
		}
		eventually(t, 90*time.Second, node+"'s kubelet to serve sessions again", func() bool {
			return clients[1].kubectl(t, viaExecProxy, "admin", "", "-n", "team-b", "exec", "other", "--", "true").code == 0
		})
	})
}

// TestContainerExitsMidSession: when the container's main process exits under a session (its
// other processes go with it), the session ends, kubectl returns, and the end record says how.
func TestContainerExitsMidSession(t *testing.T) {
	for _, c := range []client{clients[0], clients[1]} {
		t.Run(c.name, func(t *testing.T) {
			pod := "exiting-" + strings.TrimPrefix(strings.ReplaceAll(c.name, ".", "-"), "kubectl")
			runBusyboxPod(t, pod, "  restartPolicy: Never\n",
				"    name: main\n    command: [sh, -c, 'trap \"exit 3\" TERM; while true; do sleep 1; done']\n")
			m := marker(t)
			s := c.start(t, viaExecProxy, "admin", "exec", "-i", "-n", "demo", pod, "--", "sh", "-c", "echo holding-"+m+"; cat")
			s.waitFor(t, "holding-"+m)
			admin(t, "", "-n", "demo", "exec", pod, "--", "kill", "1") // its trap exits 3
			select {
			case <-s.done:
			case <-time.After(60 * time.Second):
				t.Fatalf("kubectl still running 60 s after the container exited; output:\n%s", s.output())
			}
			// The exec'd shell is killed with its container (137): kubectl and the record agree.
			a := endRecord(t, m).Annotations
			if code := s.cmd.ProcessState.ExitCode(); a[annotation+"reason"] != "exited" || a[annotation+"exit-code"] != strconv.Itoa(code) {
				t.Errorf("kubectl exit %d, end record %+v", code, a)
			}
			t.Logf("kubectl exit %d; end record: reason %q, exit code %q", s.cmd.ProcessState.ExitCode(), a[annotation+"reason"], a[annotation+"exit-code"])
		})
	}
}

// runBusyboxPod runs pod name in demo on node1 until the test ends: extra spec lines (spec), and
// one busybox container whose other fields are container's lines.
func runBusyboxPod(t *testing.T, name, spec, container string) {
	t.Helper()
	admin(t, "", "-n", "demo", "delete", "pod", name, "--wait=true", "--ignore-not-found") // left by an interrupted run
	admin(t, fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: demo}\nspec:\n  nodeName: 127.0.0.1\n"+
		"  automountServiceAccountToken: false\n  enableServiceLinks: false\n  terminationGracePeriodSeconds: 1\n%s"+
		"  containers:\n  - image: registry.local/busybox:local\n    imagePullPolicy: Never\n%s", name, spec, container), "apply", "-f", "-")
	t.Cleanup(func() { admin(t, "", "-n", "demo", "delete", "pod", name, "--wait=true", "--ignore-not-found") })
	admin(t, "", "-n", "demo", "wait", "--for=condition=Ready", "pod/"+name, "--timeout=60s")
}
