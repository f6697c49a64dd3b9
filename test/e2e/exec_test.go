//go:build e2e

package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// forEach runs fn for every kubectl client over both routes: exec-proxy and, as the baseline that
// must behave the same, kube-apiserver's own pods/exec path to the same kubelet.
func forEach(t *testing.T, fn func(t *testing.T, c client, rt route)) {
	for _, c := range clients {
		for _, rt := range []route{viaExecProxy, viaAPIServer} {
			t.Run(c.name+"/"+rt.name, func(t *testing.T) { fn(t, c, rt) })
		}
	}
}

func marker(t *testing.T) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "m" + hex.EncodeToString(b)
}

func TestExecExitCodesAndStreams(t *testing.T) {
	forEach(t, func(t *testing.T, c client, rt route) {
		m := marker(t)
		res := c.kubectl(t, rt, "admin", "", "exec", "demo", "-c", "main", "--", "sh", "-c", "echo out-"+m+"; echo err-"+m+" >&2; exit 7")
		if res.code != 7 {
			t.Errorf("exit code = %d, want 7; stderr: %s", res.code, res.stderr)
		}
		if res.stdout != "out-"+m+"\n" {
			t.Errorf("stdout = %q, want only the command's stdout", res.stdout)
		}
		if !strings.Contains(res.stderr, "err-"+m) || strings.Contains(res.stderr, "out-"+m) {
			t.Errorf("stderr = %q, want the command's stderr and not its stdout", res.stderr)
		}
		if rt == viaExecProxy {
			line := sessionLogLine(t, m)
			if !strings.Contains(line, `protocol="`+c.protocol+`"`) {
				t.Errorf("exec-proxy saw another protocol than %s: %s", c.protocol, line)
			}
		}
		if res := c.kubectl(t, rt, "admin", "", "exec", "demo", "-c", "main", "--", "true"); res.code != 0 {
			t.Errorf("exec true: exit %d, stderr %s", res.code, res.stderr)
		}
	})
}

func TestExecStdinAndContainerChoice(t *testing.T) {
	payload := make([]byte, 512*1024)
	_, _ = rand.Read(payload)
	in := hex.EncodeToString(payload) // 1 MiB of text
	sum := sha256.Sum256([]byte(in))
	forEach(t, func(t *testing.T, c client, rt route) {
		res := c.kubectl(t, rt, "admin", in, "exec", "-i", "demo", "-c", "main", "--", "sha256sum")
		if got := strings.Fields(res.stdout); res.code != 0 || len(got) == 0 || got[0] != hex.EncodeToString(sum[:]) {
			t.Errorf("exec -i sha256sum of 1 MiB stdin: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
		}
		res = c.kubectl(t, rt, "admin", "", "exec", "demo", "-c", "sidecar", "--", "cat", "/tmp/whoami")
		if res.code != 0 || res.stdout != "sidecar\n" {
			t.Errorf("exec -c sidecar: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
		}
	})
}

func TestAttach(t *testing.T) {
	forEach(t, func(t *testing.T, c client, rt route) {
		s := c.start(t, rt, "admin", "attach", "-i", "echo")
		m := marker(t)
		// The container echoes each line it reads; stdin stays open until the echo is seen.
		s.waitFor(t, "pressing enter")
		if _, err := io.WriteString(s.stdin, m+"\n"); err != nil {
			t.Fatal(err)
		}
		s.waitFor(t, "echo: "+m)
		if code := s.wait(t); code != 0 {
			t.Errorf("attach exited %d; output:\n%s", code, s.output())
		}
	})
}

var forwarding = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`)

func TestPortForward(t *testing.T) {
	forEach(t, func(t *testing.T, c client, rt route) {
		s := c.start(t, rt, "admin", "port-forward", "pod/demo", ":8080")
		s.waitFor(t, "Forwarding from 127.0.0.1:")
		port := forwarding.FindStringSubmatch(s.output())[1]
		for i := 0; i < 3; i++ { // each request is a new stream in the same session
			body := httpGet(t, "http://127.0.0.1:"+port+"/index.html")
			if body != "hello from exec-proxy's demo pod\n" {
				t.Fatalf("GET through port-forward = %q", body)
			}
		}
	})
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return string(b)
}

func TestCopyBothWays(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.bin")
	data := make([]byte, 4<<20)
	_, _ = rand.Read(data)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	forEach(t, func(t *testing.T, c client, rt route) {
		remote := fmt.Sprintf("/tmp/cp-%s", marker(t))
		if res := c.kubectl(t, rt, "admin", "", "cp", "-c", "main", src, "demo/demo:"+remote); res.code != 0 {
			t.Fatalf("cp to the pod: exit %d: %s", res.code, res.stderr)
		}
		res := c.kubectl(t, rt, "admin", "", "exec", "demo", "-c", "main", "--", "sha256sum", remote)
		if got := strings.Fields(res.stdout); len(got) == 0 || got[0] != hex.EncodeToString(want[:]) {
			t.Fatalf("checksum in the pod = %q, want %x", res.stdout, want)
		}
		back := filepath.Join(t.TempDir(), "back.bin")
		if res := c.kubectl(t, rt, "admin", "", "cp", "-c", "main", "demo/demo:"+remote, back); res.code != 0 {
			t.Fatalf("cp from the pod: exit %d: %s", res.code, res.stderr)
		}
		got, err := os.ReadFile(back)
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(got) != want {
			t.Fatalf("file copied back differs (%d bytes, want %d)", len(got), len(data))
		}
		c.kubectl(t, rt, "admin", "", "exec", "demo", "-c", "main", "--", "rm", "-f", remote)
	})
}

// sessionLogLine finds exec-proxy's "Session ended" line for the session whose command held m.
func sessionLogLine(t *testing.T, m string) string {
	t.Helper()
	var found string
	eventually(t, 10*time.Second, "exec-proxy to log the session "+m, func() bool {
		b, _ := os.ReadFile(filepath.Join(clusterDir(), "logs", "exec-proxy.log"))
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "Session ended") && strings.Contains(line, m) {
				found = line
				return true
			}
		}
		return false
	})
	return found
}
