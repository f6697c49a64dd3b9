//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/utils/clock"

	"github.com/exec-proxy/exec-proxy/pkg/recording"
)

// TestRecordingBucketOutlivesReplica: with the recordings kept in the local cluster's S3 server
// (EXEC_PROXY_RECORDING_BUCKET=1, hack/cluster/s3.sh), a `kubectl exec -it` session recorded on
// replica 1 is cut by replica 1's SIGKILL; replica 2, asked directly, serves the recording from
// the bucket's parts: what was typed more than an upload interval before the kill, marked incomplete.
func TestRecordingBucketOutlivesReplica(t *testing.T) {
	bucketEnv := []string{"EXEC_PROXY_RECORDING_BUCKET=1", "EXEC_PROXY_RECORDING_UPLOAD_INTERVAL=1s"}
	restartExecProxyEnv(t, append(append([]string{}, execProxyEnv...), bucketEnv...))
	startReplica2(t)
	c := clients[1]
	m := marker(t)
	term := newTerminal(t, 100, 30, c.env, c.path(), "--kubeconfig", kubeconfig("admin"+viaExecProxy.suffix),
		"exec", "-it", "demo", "-c", "main", "--", "sh", "-c", "exec sh -i", m)
	term.typeLine("echo before-$((6*7))-" + m)
	term.waitFor("before-42-" + m)
	var id string
	eventually(t, 20*time.Second, "the session to be listed", func() bool {
		sessions, _ := listed(t, c, m)
		for sid, replica := range sessions {
			if replica == "replica-1" {
				id = sid
			}
		}
		return id != ""
	})
	// What was typed reaches the bucket within an upload interval and the upload's time. The test
	// waits on the bucket itself, not on a clock: replica 1 alive would serve its spool to replica 2.
	b := localBucket(t)
	eventually(t, 30*time.Second, "the typed output in the bucket's parts", func() bool {
		rc, err := b.Open(context.Background(), id)
		if err != nil {
			return false
		}
		defer rc.Close()
		got, _ := io.ReadAll(rc)
		return strings.Contains(string(got), "before-42-"+m)
	})
	signalAndWait(t, "exec-proxy", syscall.SIGKILL, 10*time.Second)
	res := recordingVia2(t, c, id)
	if res.code != 0 || !strings.HasPrefix(res.stdout, `{"version":2`) || !strings.Contains(res.stdout, "before-42-"+m) ||
		!strings.Contains(res.stdout, `"m","exec-proxy: the recording ends here: the replica that recorded it stopped before the session ended"]`) {
		t.Errorf("recording of %s through replica 2 after replica 1's kill: exit %d %q %s", id, res.code, res.stdout, res.stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n")[1:] {
		if !strings.HasPrefix(line, "[") || !strings.HasSuffix(line, "]") {
			t.Errorf("not an asciicast event: %q", line)
		}
	}
	if res := c.run(t, kubeconfig("admin-replica2-direct"), "", "get", "--raw",
		"/apis/execproxy.dev/v1alpha1/namespaces/default/execsessions/"+id+"/recording"); res.code == 0 {
		t.Errorf("the bucket served %s in another namespace: %q", id, res.stdout)
	}
}

// recordingVia2 reads session id's recording from replica 2 straight (kube-apiserver reaches replica 1 only).
func recordingVia2(t *testing.T, c client, id string) result {
	t.Helper()
	path := kubeconfig("admin-replica2-direct")
	if _, err := os.Stat(path); err != nil {
		pki := filepath.Join(clusterDir(), "pki")
		cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: r2, cluster: {server: "https://127.0.0.1:18444", certificate-authority: %q, tls-server-name: exec-proxy.execproxy-system.svc}}]
users: [{name: admin, user: {client-certificate: %q, client-key: %q}}]
contexts: [{name: r2, context: {cluster: r2, user: admin, namespace: demo}}]
current-context: r2
`, filepath.Join(pki, "ca.crt"), filepath.Join(pki, "user-admin.crt"), filepath.Join(pki, "user-admin.key"))
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(path) })
	}
	return c.run(t, path, "", "get", "--raw",
		"/apis/execproxy.dev/v1alpha1/namespaces/demo/execsessions/"+id+"/recording")
}

// localBucket opens the local cluster's recording bucket (hack/cluster/s3.sh) with its credentials.
func localBucket(t *testing.T) *recording.Bucket {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(clusterDir(), "s3-credentials"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		t.Setenv(k, v)
	}
	b, err := recording.OpenBucket(context.Background(),
		"s3://recordings?endpoint=http://127.0.0.1:19000&region=us-east-1&use_path_style=true&disable_https=true", time.Second, clock.RealClock{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
