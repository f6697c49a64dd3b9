//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

const inClusterNS = "execproxy-system"

// inCluster runs hack/cluster/in-cluster.sh with args, failing the test with its output.
func inCluster(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(), "hack", "cluster", "in-cluster.sh"), args...)
	cmd.Dir = repoRoot()
	out, err := cmd.CombinedOutput()
	t.Logf("in-cluster.sh %s:\n%s", strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("in-cluster.sh %s: %v", strings.Join(args, " "), err)
	}
}

// execProxyPods are the names of exec-proxy's pods, and which of them are terminating.
func execProxyPods(t *testing.T) (running, terminating []string) {
	t.Helper()
	out := admin(t, "", "-n", inClusterNS, "get", "pods", "-l", "app.kubernetes.io/name=exec-proxy",
		"-o", `go-template={{range .items}}{{.metadata.name}} {{if .metadata.deletionTimestamp}}terminating{{else}}{{range .status.conditions}}{{if eq .type "Ready"}}{{.status}}{{end}}{{end}}{{end}}{{"\n"}}{{end}}`)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, state, _ := strings.Cut(line, " ")
		switch state {
		case "terminating":
			terminating = append(terminating, name)
		case "True":
			running = append(running, name)
		}
	}
	return running, terminating
}

// podAuditRecords are the session audit records in a pod's log (--session-audit-log-path=-) whose
// command carries m.
func podAuditRecords(log, m string) map[string][]auditv1.Event {
	recs := map[string][]auditv1.Event{}
	for _, line := range strings.Split(log, "\n") {
		var ev auditv1.Event
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &ev) != nil || ev.Kind != "Event" {
			continue
		}
		if strings.Contains(ev.Annotations[annotation+"command"], m) {
			recs[ev.Annotations[annotation+"record"]] = append(recs[ev.Annotations[annotation+"record"]], ev)
		}
	}
	return recs
}

// TestInCluster: exec-proxy installed as an admin installs it (hack/cluster/in-cluster.sh: make
// image's image in the nodes' containerd, hack/deploy-certs.sh, deploy/ through the local overlay)
// serves kubectl's sessions through kube-apiserver. Rolled out to a second build while a session is
// live, the session goes on on the draining pod until it ends there, audited, and the new pod serves
// new sessions. Uninstalled, nothing of deploy/ is left. The host's exec-proxy comes back.
func TestInCluster(t *testing.T) {
	t.Cleanup(func() { inCluster(t, "down") })
	inCluster(t, "up")
	running, _ := execProxyPods(t)
	if len(running) != 1 {
		t.Fatalf("want one ready exec-proxy pod, have %v", running)
	}
	oldPod := running[0]
	// Its log from the start to its exit: the audit records of the session it drains.
	oldLog := clients[1].startWithin(t, 8*time.Minute, route{name: "kube-apiserver"}, "cluster-admin", "-n", inClusterNS, "logs", "-f", oldPod)
	_ = oldLog.stdin.Close()

	for _, c := range []client{clients[0], clients[1]} {
		m := marker(t)
		res := c.kubectl(t, viaExecProxy, "admin", m+"\n", "exec", "-i", "demo", "-c", "main", "--", "cat")
		if res.code != 0 || res.stdout != m+"\n" {
			t.Fatalf("%s through the in-cluster exec-proxy: exit %d %q %s", c.name, res.code, res.stdout, res.stderr)
		}
	}

	liveMarker := marker(t) // in the command, for its audit records
	live := clients[1].startWithin(t, 8*time.Minute, viaExecProxy, "admin", "exec", "-i", "demo", "-c", "main", "--", "sh", "-c", "cat; : "+liveMarker)
	m := marker(t)
	if _, err := live.stdin.Write([]byte(m + "\n")); err != nil {
		t.Fatal(err)
	}
	live.waitFor(t, m)

	upgraded := make(chan struct{})
	t.Cleanup(func() { <-upgraded }) // before the uninstall (cleanups run last first)
	go func() {
		defer close(upgraded)
		cmd := exec.Command(filepath.Join(repoRoot(), "hack", "cluster", "in-cluster.sh"), "upgrade", "local-2")
		cmd.Dir = repoRoot()
		out, err := cmd.CombinedOutput()
		t.Logf("in-cluster.sh upgrade local-2: %v\n%s", err, out)
		if err != nil {
			t.Errorf("in-cluster.sh upgrade: %v", err)
		}
	}()
	var newPod string
	eventually(t, 4*time.Minute, "the new pod ready and the old one draining", func() bool {
		running, terminating := execProxyPods(t)
		if len(running) == 1 && running[0] != oldPod && len(terminating) == 1 && terminating[0] == oldPod {
			newPod = running[0]
			return true
		}
		return false
	})
	image := admin(t, "", "-n", inClusterNS, "get", "pod", newPod, "-o", "jsonpath={.spec.containers[0].image}")
	if image != "registry.local/exec-proxy:local-2" {
		t.Errorf("the new pod runs %q", image)
	}

	// The live session goes on on the draining pod, and ends as its user ends it: first, since the
	// drain lasts deploy/'s --shutdown-grace-period (30 s).
	m = marker(t)
	if _, err := live.stdin.Write([]byte(m + "\n")); err != nil {
		t.Fatal(err)
	}
	live.waitFor(t, m)
	if code := live.wait(t); code != 0 {
		t.Fatalf("the live session ended with exit %d:\n%s", code, live.output())
	}
	// New sessions reach the new pod.
	newMarker := marker(t)
	eventually(t, 30*time.Second, "a new session through the new pod", func() bool {
		res := clients[1].kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "echo", newMarker)
		return res.code == 0 && res.stdout == newMarker+"\n"
	})
	<-upgraded

	select {
	case <-oldLog.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("the old pod did not exit after its last session ended")
	}
	recs := podAuditRecords(oldLog.output(), liveMarker)
	if len(recs["start"]) != 1 || len(recs["end"]) != 1 {
		t.Fatalf("the old pod's log has %d start and %d end records of the live session:\n%s", len(recs["start"]), len(recs["end"]), oldLog.output())
	}
	if a := recs["end"][0].Annotations; a[annotation+"exit-code"] != "0" || a[annotation+"reason"] != "exited" {
		t.Errorf("the drained session's end record: %v", a)
	}
	var newRecs map[string][]auditv1.Event
	eventually(t, 30*time.Second, "the new pod's records of the new session", func() bool {
		newRecs = podAuditRecords(admin(t, "", "-n", inClusterNS, "logs", newPod), newMarker)
		return len(newRecs["end"]) > 0
	})
	if len(newRecs["start"]) == 0 || newRecs["end"][0].Annotations[annotation+"exit-code"] != "0" {
		t.Errorf("the new pod's records of the new session: %v", newRecs)
	}

	// Uninstalled: nothing the overlay makes is left, the namespace included.
	inCluster(t, "uninstall")
	objects := filepath.Join(t.TempDir(), "objects.yaml")
	if err := os.WriteFile(objects, []byte(admin(t, "", "kustomize", filepath.Join(repoRoot(), "hack", "cluster", "in-cluster"))), 0o600); err != nil {
		t.Fatal(err)
	}
	if left := strings.TrimSpace(admin(t, "", "get", "-f", objects, "--ignore-not-found", "-o", "name")); left != "" {
		t.Errorf("left after uninstall:\n%s", left)
	}

	inCluster(t, "down")
	m = marker(t)
	if res := clients[1].kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "echo", m); res.code != 0 || res.stdout != m+"\n" {
		t.Errorf("the host's exec-proxy after the in-cluster one: exit %d %q %s", res.code, res.stdout, res.stderr)
	}
}
