//go:build e2e

package e2e

import (
	"cmp"
	"context"
	"encoding/json"
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
// replica 2 is cut by replica 2's SIGKILL; replica 1, asked through kube-apiserver, serves the
// recording from the bucket's parts: what was typed more than an upload interval before the kill,
// marked incomplete. (Replica 2, not 1: the suite checks that replica 1's audit log pairs every start
// record with an end record, which a replica killed outright cannot write.)
func TestRecordingBucketOutlivesReplica(t *testing.T) {
	bucketEnv := []string{"EXEC_PROXY_RECORDING_BUCKET=1", "EXEC_PROXY_RECORDING_UPLOAD_INTERVAL=1s"}
	restartExecProxyEnv(t, append(append([]string{}, execProxyEnv...), bucketEnv...))
	startReplica2(t)
	c := clients[1]
	m := marker(t)
	term := newTerminal(t, 100, 30, c.env, c.path(), "--kubeconfig", kubeconfig("admin"+viaReplica2.suffix),
		"exec", "-it", "demo", "-c", "main", "--", "sh", "-c", "exec sh -i", m)
	term.typeLine("echo before-$((6*7))-" + m)
	term.waitFor("before-42-" + m)
	var id string
	eventually(t, 20*time.Second, "the session to be listed", func() bool {
		sessions, _ := listed(t, c, m)
		for sid, replica := range sessions {
			if replica == "replica-2" {
				id = sid
			}
		}
		return id != ""
	})
	// What was typed reaches the bucket within an upload interval and the upload's time. The test
	// waits on the bucket itself, not on a clock: replica 2 alive would serve its spool to replica 1.
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
	signalAndWait(t, "exec-proxy-2", syscall.SIGKILL, 10*time.Second)
	res := c.kubectl(t, viaAPIServer, "admin", "", "get", "--raw", "/apis/execproxy.dev/v1alpha1/namespaces/demo/execsessions/"+id+"/recording")
	var header struct{ Version int }
	first, _, _ := strings.Cut(res.stdout, "\n")
	if res.code != 0 || json.Unmarshal([]byte(first), &header) != nil || header.Version != 2 || !strings.Contains(res.stdout, "before-42-"+m) ||
		!strings.Contains(res.stdout, `"m","exec-proxy: the uploaded parts end here; the rest was not uploaded (the session may still run, or its replica stopped)"]`) {
		t.Errorf("recording of %s through kube-apiserver and replica 1 after replica 2's kill: exit %d %q %s", id, res.code, res.stdout, res.stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n")[1:] {
		if !strings.HasPrefix(line, "[") || !strings.HasSuffix(line, "]") {
			t.Errorf("not an asciicast event: %q", line)
		}
	}
	// In another namespace the recording does not exist: a NotFound, not any failure.
	if res := c.kubectl(t, viaAPIServer, "admin", "", "get", "--raw",
		"/apis/execproxy.dev/v1alpha1/namespaces/default/execsessions/"+id+"/recording"); res.code == 0 || !strings.Contains(res.stderr, "(NotFound)") {
		t.Errorf("recording of %s asked for in another namespace: exit %d %q %s; want a NotFound", id, res.code, res.stdout, res.stderr)
	}
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
	// As hack/cluster/env.sh and exec-proxy.sh name it.
	port, bucket := cmp.Or(os.Getenv("S3_PORT"), "19000"), cmp.Or(os.Getenv("S3_BUCKET"), "recordings")
	b, err := recording.OpenBucket(context.Background(),
		"s3://"+bucket+"?endpoint=http://127.0.0.1:"+port+"&region=us-east-1&use_path_style=true&disable_https=true", time.Second, clock.RealClock{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
