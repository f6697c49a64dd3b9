package proxy

import (
	"bytes"
	"context"
	"flag"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/internal/proxytest"
)

func captureKlog(t *testing.T, v string) *proxytest.LockedBuffer {
	t.Helper()
	fs := flag.NewFlagSet("klog", flag.PanicOnError)
	klog.InitFlags(fs)
	prev := map[string]string{}
	for name, value := range map[string]string{"v": v, "logtostderr": "false", "alsologtostderr": "false", "one_output": "true"} {
		prev[name] = fs.Lookup(name).Value.String()
		_ = fs.Set(name, value)
	}
	buf := &proxytest.LockedBuffer{}
	klog.SetOutput(buf)
	t.Cleanup(func() {
		klog.Flush()
		for name, value := range prev {
			_ = fs.Set(name, value)
		}
		klog.SetOutput(os.Stderr)
	})
	return buf
}

// TestCredentialsNeverLogged: at -v=10, where the upgrade-aware proxy logs the headers of the
// request it sends to the kubelet (from -v=6, which /debug/flags/v can switch on at run time) and
// client-go logs its requests, neither exec-proxy's kubelet token nor the user's own bearer token
// reaches a log line, on the upgrade-aware proxy's path (SPDY) or the translator's (WebSocket);
// the kubelet still gets the token.
func TestCredentialsNeverLogged(t *testing.T) {
	checkLeaks(t)
	const kubeletToken, userToken = "kubelet-token-b1d7e4", "user-token-9c3a0f"
	kubelet := newFakeKubeletWithToken(t, kubeletToken)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(kubeletToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr, err := nodeconn.NewTransport(nodeconn.TransportConfig{CAFile: kubelet.caFile, TokenFile: tokenFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	srv := front(t, New(newResolver(t, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t))), tr, Limits{}))

	logs := captureKlog(t, "10")
	for _, protocol := range []string{"spdy", "websocket"} {
		if out, err := execWithBearer(t, srv, protocol, userToken, "authorized"); err != nil || out != "authorized\n" {
			t.Errorf("%s: got %q %v", protocol, out, err)
		}
	}
	klog.Flush()
	got := logs.String()
	// What the old code leaked through: had it not been logged, this test could not fail.
	if !strings.Contains(got, "Connecting to backend proxy") {
		t.Fatalf("the upgrade-aware proxy's header log (-v=6) was not captured:\n%s", got)
	}
	for _, secret := range []string{kubeletToken, userToken} {
		for _, line := range strings.Split(got, "\n") {
			if strings.Contains(line, secret) {
				t.Errorf("a log line holds %q: %s", secret, line)
			}
		}
	}
}

// execWithBearer runs echo word through srv with the user's own bearer token on the request.
func execWithBearer(t *testing.T, srv *httptest.Server, protocol, bearer, word string) (string, error) {
	t.Helper()
	q := url.Values{"command": {"echo", word}, "container": {"a"}, "stdout": {"true"}, "stderr": {"true"}}
	u, _ := url.Parse(srv.URL + "/p?" + q.Encode())
	cfg := &restclient.Config{Host: srv.URL, BearerToken: bearer, WrapTransport: withUser("alice")}
	exec := executorFor(t, cfg, protocol, u)
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut})
	return out.String(), err
}
