package execsession

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"

	"github.com/exec-proxy/exec-proxy/internal/poll"
	"github.com/exec-proxy/exec-proxy/pkg/peers"
	"github.com/exec-proxy/exec-proxy/pkg/recording"
	"github.com/exec-proxy/exec-proxy/pkg/recording/recordingtest"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// The helper process's settings: it is the replica that records, and is killed.
const (
	helperBucket = "EXECPROXY_TEST_RECORDING_BUCKET"
	helperSpool  = "EXECPROXY_TEST_RECORDING_SPOOL"
	typed        = "typed before the kill"
)

// TestRecordingReplicaHelper is not a test: TestRecordingFromBucketAfterReplicaKilled runs it
// in a process of its own, records a session to the bucket, and kills it mid-session.
func TestRecordingReplicaHelper(t *testing.T) {
	url := os.Getenv(helperBucket)
	if url == "" {
		t.Skip("run by TestRecordingFromBucketAfterReplicaKilled")
	}
	b, err := recording.OpenBucket(context.Background(), url, 50*time.Millisecond, clock.RealClock{})
	if err != nil {
		t.Fatal(err)
	}
	s := recording.Session{ID: "killed-1", Kind: session.KindExec, Namespace: "a", Pod: "p", User: "alice", TTY: true, Command: []string{"sh"}}
	sink, err := recording.New(recording.Config{Dir: os.Getenv(helperSpool), Bucket: b}, s, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink.Add("r", []byte("80x24"))
	sink.Add("o", []byte("$ echo "+typed+"\r\n"+typed+"\r\n"))
	os.Stdout.WriteString("recording\n")
	select {} // the session runs until the process is killed
}

// TestRecordingFromBucketAfterReplicaKilled: a replica records a session to a real S3 server and
// is killed (SIGKILL) mid-session; another replica, whose peers cannot reach it, serves the
// recording from the bucket's parts: a valid asciicast with what was typed, marked incomplete.
func TestRecordingFromBucketAfterReplicaKilled(t *testing.T) {
	s3 := recordingtest.StartS3(t)
	s3.Credentials(t, false)
	url := s3.URL("rec/")
	cmd := exec.Command(os.Args[0], "-test.run=^TestRecordingReplicaHelper$", "-test.v")
	cmd.Env = append(os.Environ(), helperBucket+"="+url, helperSpool+"="+t.TempDir())
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "recording" {
	}
	go io.Copy(io.Discard, stdout)

	b, err := recording.OpenBucket(context.Background(), url, time.Second, clock.RealClock{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	read := func() string {
		rc, err := b.Open(context.Background(), "killed-1")
		if err != nil {
			return err.Error()
		}
		defer rc.Close()
		got, _ := io.ReadAll(rc)
		return string(got)
	}
	poll.Until(t, func() bool { return strings.Contains(read(), typed+`\r\n"]`) }) // a part is up
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	down := &fakeRecordingPeers{answers: []peers.Answer{{Peer: "r1 at 127.0.0.1:1", Err: errors.New("connection refused")}}}
	obj, err := NewRecordingREST(t.TempDir(), "r2", down, b).Get(ctxIn("a", "admin"), "killed-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _, _, _ := obj.(*castStream).InputStream(context.Background(), "", "")
	got, err := io.ReadAll(body)
	body.Close()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "killed-1.cast")
	if err := os.WriteFile(path, got, 0o600); err != nil {
		t.Fatal(err)
	}
	header, events := recordingtest.ReadCast(t, path) // a valid asciicast v2
	if header["version"] != float64(2) || header["width"] != float64(80) {
		t.Errorf("header %v", header)
	}
	last := events[len(events)-1]
	if !strings.Contains(string(got), typed+`\r\n"]`) || last[1] != "m" || last[2] != recording.Incomplete {
		t.Errorf("recording %q: want the output typed and the incomplete marker last", got)
	}
	// The bucket shows the session is of another namespace: a NotFound, though a peer is down.
	if _, err := NewRecordingREST("", "r2", down, b).Get(ctxIn("b", "admin"), "killed-1", nil); !apierrors.IsNotFound(err) {
		t.Errorf("another namespace's recording: %v, want a NotFound", err)
	}
}

// askedBucket records which ids reach the bucket.
type askedBucket struct{ asked []string }

func (a *askedBucket) Open(_ context.Context, id string) (io.ReadCloser, error) {
	a.asked = append(a.asked, id)
	return nil, recording.ErrNotInBucket
}

// TestRecordingBucketKeys: no name but a session id becomes a key.
func TestRecordingBucketKeys(t *testing.T) {
	notFound := &fakeRecordingPeers{answers: []peers.Answer{{Peer: "r1", Code: http.StatusNotFound}}}
	cases := []struct {
		name, id string
		asked    bool
	}{
		{"a session id", "0f6a2b1c-9d8e-4f00-a1b2-c3d4e5f60718", true},
		{"up a level", "../s1", false},
		{"an escaped slash", "s1%2f..%2fother", false},
		{"a slash", "s1/part-000000", false},
		{"a dot", "s1.cast", false},
		{"too long", strings.Repeat("a", 65), false},
		{"empty", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &askedBucket{}
			_, err := NewRecordingREST("", "r2", notFound, b).Get(ctxIn("a", "admin"), tc.id, nil)
			if err == nil || !strings.Contains(err.Error(), "not found") {
				t.Errorf("err %v, want not found", err)
			}
			if (len(b.asked) > 0) != tc.asked {
				t.Errorf("bucket asked for %q", b.asked)
			}
		})
	}
}
