//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// execPath is exec-proxy's own exec URL path for sh -c script in demo/demo's main container.
func execPath(script string, stdin bool) string {
	q := url.Values{"container": {"main"}, "command": {"sh", "-c", script}, "stdout": {"true"}}
	if stdin {
		q.Set("stdin", "true")
	}
	return "/apis/execproxy.dev/v1alpha1/namespaces/demo/pods/demo/exec?" + q.Encode()
}

// TestReliabilityGarbageFrames: a client that upgrades and then sends bytes that are not frames
// has its session ended and its connection closed, with an end record, over SPDY and WebSocket.
func TestReliabilityGarbageFrames(t *testing.T) {
	runCheck(t, "bad input (garbage frames)", false, checkGarbageFrames)
}

func checkGarbageFrames(p *probe) {
	t := p.t
	before := execProxyFigures(t)
	for _, up := range []upgrade{spdyUpgrade, wsUpgrade} {
		m := marker(t)
		conn, r, resp := sendUpgrade(t, "admin", up, execPath("cat # "+m, true))
		p.count(1, 0, b2i(resp.StatusCode == http.StatusSwitchingProtocols), 0)
		if resp.StatusCode != http.StatusSwitchingProtocols {
			p.finding("%s: upgrade answered %d", up.name, resp.StatusCode)
			conn.Close()
			continue
		}
		garbage := make([]byte, 64<<10)
		_, _ = rand.Read(garbage)
		copy(garbage, "GARBAGE!") // so that it is not by chance a frame header both would follow
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		_, _ = conn.Write(garbage) // may fail once exec-proxy or the kubelet gave up: that is the point
		_, err := io.Copy(io.Discard, r)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			p.finding("%s: the connection is still open 30 s after 64 KiB of garbage", up.name)
		}
		conn.Close()
		a := endRecord(t, m).Annotations
		p.figure("%s: ended %q", up.name, a[annotation+"reason"])
		if a[annotation+"reason"] != "client protocol error" {
			p.finding("%s: end record %v, want reason client protocol error", up.name, a)
		}
	}
	p.leakCheck(before)
}

// TestReliabilityClientNeverReads: a client that upgrades to a command writing without end and
// never reads does not pin exec-proxy's memory: flow control holds the command back. When the
// client goes, the session ends.
func TestReliabilityClientNeverReads(t *testing.T) {
	runCheck(t, "client never reads", false, checkClientNeverReads)
}

// maxPinnedKiB is how much exec-proxy's RSS may grow while a client does not read.
const maxPinnedKiB = 64 << 10

func checkClientNeverReads(p *probe) {
	t := p.t
	before := execProxyFigures(t)
	const hold = 8 * time.Second
	// WebSocket, raw: the translator opens the kubelet's streams itself, so not reading is enough.
	m := marker(t)
	conn, _, resp := sendUpgrade(t, "admin", wsUpgrade, execPath("yes "+strings.Repeat("y", 1000)+" # "+m, false))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("WebSocket upgrade answered %d", resp.StatusCode)
	}
	_ = conn.SetDeadline(time.Time{})
	rss0 := execProxyRSS(t)
	time.Sleep(hold)
	p.pinned("WebSocket", execProxyRSS(t)-rss0)
	conn.Close()
	p.count(1, 0, 1, 0)
	p.figure("WebSocket: ended %q", endRecord(t, m).Annotations[annotation+"reason"])

	// SPDY, with client-go: its stdout writer blocks until the test lets it go.
	m = marker(t)
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	u, _ := url.Parse("https://" + execProxyAddr + execPath("yes "+strings.Repeat("y", 1000)+" # "+m, false))
	exec, err := remotecommand.NewSPDYExecutor(straightConfig("admin"), http.MethodPost, u)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		done <- exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: blockedWriter(release)})
	}()
	rss0 = execProxyRSS(t)
	time.Sleep(hold)
	p.pinned("SPDY", execProxyRSS(t)-rss0)
	cancel()
	close(release)
	<-done
	p.count(1, 0, 1, 0)
	p.figure("SPDY: ended %q", endRecord(t, m).Annotations[annotation+"reason"])
	p.leakCheck(before)
}

func (p *probe) pinned(name string, grownKiB int64) {
	p.figure("%s: RSS grew %d KiB in 8 s of a client not reading", name, grownKiB)
	if grownKiB > maxPinnedKiB {
		p.finding("%s: exec-proxy's RSS grew %d KiB while the client did not read (bound %d KiB)", name, grownKiB, maxPinnedKiB)
	}
}

// blockedWriter blocks every write until it is closed, then fails it.
type blockedWriter chan struct{}

func (w blockedWriter) Write(p []byte) (int, error) {
	<-w
	return 0, io.ErrClosedPipe
}

// straightConfig is user's client certificate against exec-proxy's own port, for client-go.
func straightConfig(user string) *rest.Config {
	pki := filepath.Join(clusterDir(), "pki")
	return &rest.Config{Host: "https://" + execProxyAddr, QPS: -1, TLSClientConfig: rest.TLSClientConfig{
		CAFile:   filepath.Join(pki, "ca.crt"),
		CertFile: filepath.Join(pki, "user-"+user+".crt"), KeyFile: filepath.Join(pki, "user-"+user+".key"),
	}}
}
