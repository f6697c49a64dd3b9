package recordingtest

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// S3 is the tests' S3-compatible server (hack/tools/s3server), on loopback for one test.
type S3 struct {
	Endpoint          string // http://127.0.0.1:PORT
	Bucket            string
	AccessKey, Secret string
}

// URL is a gocloud.dev/blob URL of the server's bucket, under prefix.
func (s *S3) URL(prefix string) string {
	u := "s3://" + s.Bucket + "?endpoint=" + s.Endpoint + "&region=us-east-1&use_path_style=true&disable_https=true"
	if prefix != "" {
		u += "&prefix=" + prefix
	}
	return u
}

// Credentials puts the server's key in the driver's environment (wrong: a key it refuses).
func (s *S3) Credentials(t *testing.T, wrong bool) {
	t.Helper()
	secret := s.Secret
	if wrong {
		secret = "not-the-secret"
	}
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_CONFIG_FILE", os.DevNull) // nothing of the machine's own AWS setup
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
}

// StartS3 builds the server with hack/build-s3server.sh (cached after the first time; S3SERVER
// names a built one instead) and runs it until t ends.
func StartS3(t *testing.T) *S3 {
	t.Helper()
	bin := os.Getenv("S3SERVER")
	if bin == "" {
		_, here, _, _ := runtime.Caller(0)
		script := filepath.Join(filepath.Dir(here), "..", "..", "..", "hack", "build-s3server.sh")
		var stderr bytes.Buffer
		cmd := exec.Command(script)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("building the S3 server: %v\n%s", err, stderr.String())
		}
		bin = strings.TrimSpace(string(out))
	}
	s := &S3{Bucket: "recordings", AccessKey: "exec-proxy-test", Secret: "test-secret-" + filepath.Base(t.TempDir())}
	cmd := exec.Command(bin, "-bucket", s.Bucket)
	cmd.Env = append(os.Environ(), "S3SERVER_ACCESS_KEY_ID="+s.AccessKey, "S3SERVER_SECRET_ACCESS_KEY="+s.Secret)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if err != nil || !ok {
		t.Fatalf("the S3 server did not start: %q, %v", line, err)
	}
	s.Endpoint = addr
	return s
}
