//go:build e2e

package e2e

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/moby/spdystream"
)

// TestReliabilityMemoryBound: one user at their session cap, each session sending the largest
// frames exec-proxy accepts (SPDY resize and stdin DATA frames of 16 MiB, WebSocket stdin
// messages of 256 KiB, stdin recorded), keeps exec-proxy's resident memory within maxAttackGrowthKiB
// of what it was before, while another user's kubectl exec through the route keeps working.
func TestReliabilityMemoryBound(t *testing.T) {
	runCheck(t, "memory bound (one user at the cap, worst frames)", false, checkMemoryBound)
}

const (
	// attackCap is --max-sessions-per-user, its default: the user holds every session allowed.
	attackCap = 50
	// maxAttackGrowthKiB is the bound docs/session-bounds.md states: 192 MiB of RSS above the
	// sessions' idle for one user at the cap (measured: 34, 49 and 131 MiB for the three kinds).
	maxAttackGrowthKiB = 192 << 10
	spdyMaxData        = 1<<24 - 1 // a SPDY frame's 24-bit length
	wsMaxPayload       = 256 << 10 // the largest client frame exec-proxy takes (x/net/websocket would take 32 MiB)
	framesPerSession   = 2
	wsFramesPerSession = 64
)

func checkMemoryBound(p *probe) {
	t := p.t
	// The start rate is raised so that only the cap refuses: this check is about what open sessions hold.
	restartExecProxy(t, "--max-sessions-per-user", fmt.Sprint(attackCap), "--session-start-qps", "1000", "--session-start-burst", "1000",
		"--record-stdin", "--record-non-tty")
	before := execProxyFigures(t)
	for _, kind := range []string{"SPDY resize", "SPDY stdin", "WebSocket stdin"} {
		// All the user's sessions open first, so that the one over the cap is refused by the cap.
		attacks := make([]worstFrames, attackCap)
		for i := range attacks {
			attacks[i] = openWorstFrames(p, kind)
		}
		over := straightUpgradeOnce(t, "ns-user", spdyUpgrade, memExecPath(false, true), false)
		p.count(1, b2i(over.code == http.StatusTooManyRequests), 0, 0)
		if over.code != http.StatusTooManyRequests {
			p.finding("%s: session %d of a user capped at %d answered %d, want 429", kind, attackCap+1, attackCap, over.code)
		}

		idle := execProxyRSS(t)
		peak := watchRSS()
		var wg sync.WaitGroup
		for _, a := range attacks {
			if a.send != nil {
				wg.Add(1)
				go func() { defer wg.Done(); a.send() }()
			}
		}
		// Meanwhile another user's session works.
		res := clients[1].kubectl(t, viaExecProxy, "admin", "", "exec", "demo", "-c", "main", "--", "echo", "still-served")
		p.count(1, 0, b2i(res.code == 0), 0)
		if res.code != 0 || res.stdout != "still-served\n" {
			p.finding("%s: another user's exec during the attack: exit %d, stdout %q, stderr %s", kind, res.code, res.stdout, res.stderr)
		}
		wg.Wait()
		grown := peak() - idle
		p.figure("%s: RSS peak %d KiB above the sessions' idle (bound %d KiB)", kind, grown, maxAttackGrowthKiB)
		if grown > maxAttackGrowthKiB {
			p.finding("%s: exec-proxy's RSS grew %d KiB under one user's worst frames (bound %d KiB)", kind, grown, maxAttackGrowthKiB)
		}
		for _, a := range attacks {
			if a.conn != nil {
				a.conn.Close()
			}
		}
		eventually(t, 60*time.Second, "the attacker's sessions to end", func() bool {
			return execProxyMetrics(t)["execproxy_sessions_active"] == 0
		})
	}
	p.leakCheck(before)
}

// worstFrames is one open session of the attacker and what sends its frames.
type worstFrames struct {
	conn io.Closer
	send func()
}

func openWorstFrames(p *probe, kind string) worstFrames {
	switch kind {
	case "SPDY resize":
		return spdyWorstFrames(p, "resize")
	case "SPDY stdin":
		return spdyWorstFrames(p, "stdin")
	}
	return wsWorstFrames(p)
}

// memExecPath is exec-proxy's own exec path for a command that reads stdin, discards it, and stays
// until the session ends.
func memExecPath(tty, stdin bool) string {
	q := url.Values{"container": {"main"}, "command": {"sh", "-c", "cat >/dev/null; sleep 600"}, "stdout": {"true"}}
	if stdin {
		q.Set("stdin", "true")
	}
	if tty {
		q.Set("tty", "true")
	} else {
		q.Set("stderr", "true")
	}
	return "/apis/execproxy.dev/v1alpha1/namespaces/demo/pods/demo/exec?" + q.Encode()
}

// spdyWorstFrames opens a SPDY session as kubectl would (spdystream, the real framer) and sends
// framesPerSession DATA frames of the largest size SPDY allows on the stream of streamType. It
// returns the open connection, or nil when exec-proxy refused the session.
func spdyWorstFrames(p *probe, streamType string) worstFrames {
	t := p.t
	tty := streamType == "resize"
	conn, _, resp := sendUpgrade(t, "ns-user", spdyUpgrade, memExecPath(tty, true))
	p.count(1, b2i(resp.StatusCode != http.StatusSwitchingProtocols), b2i(resp.StatusCode == http.StatusSwitchingProtocols), 0)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		p.finding("SPDY %s session answered %d", streamType, resp.StatusCode)
		conn.Close()
		return worstFrames{}
	}
	_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
	sc, err := spdystream.NewConnection(conn, false)
	if err != nil {
		t.Fatal(err)
	}
	go sc.Serve(spdystream.NoOpStreamHandler)
	types := []string{"error", "stdin", "stdout"}
	if tty {
		types = append(types, "resize")
	} else {
		types = append(types, "stderr")
	}
	streams := map[string]*spdystream.Stream{}
	for _, typ := range types {
		s, err := sc.CreateStream(http.Header{"Streamtype": {typ}}, nil, false)
		if err != nil {
			return worstFrames{conn: conn} // exec-proxy may end the session as soon as it sees what it refuses
		}
		streams[typ] = s
		if typ != "stdin" && typ != "resize" {
			go func() { _, _ = io.Copy(io.Discard, s) }()
		}
	}
	return worstFrames{conn: conn, send: func() {
		frame := make([]byte, spdyMaxData)
		for i := range frame {
			frame[i] = ' ' // whitespace: valid to a JSON decoder that skips it, so nothing stops early
		}
		for range framesPerSession {
			if err := streams[streamType].WriteData(frame, false); err != nil {
				break
			}
			p.count(0, 0, 0, int64(len(frame)))
		}
	}}
}

// wsWorstFrames opens a v5.channel.k8s.io session and sends wsFramesPerSession stdin messages of the
// largest size exec-proxy accepts.
func wsWorstFrames(p *probe) worstFrames {
	t := p.t
	conn, r, resp := sendUpgrade(t, "ns-user", wsUpgrade, memExecPath(false, true))
	p.count(1, b2i(resp.StatusCode != http.StatusSwitchingProtocols), b2i(resp.StatusCode == http.StatusSwitchingProtocols), 0)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		p.finding("WebSocket session answered %d", resp.StatusCode)
		conn.Close()
		return worstFrames{}
	}
	_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
	go func() { _, _ = io.Copy(io.Discard, r) }()
	return worstFrames{conn: conn, send: func() {
		payload := make([]byte, wsMaxPayload) // its first byte, 0, is the stdin channel
		for range wsFramesPerSession {
			if err := writeWSFrame(conn, payload); err != nil {
				break
			}
			p.count(0, 0, 0, int64(len(payload)))
		}
	}}
}

// writeWSFrame writes payload as one final binary frame, masked with a zero key (a client's frames
// must be masked; a zero key leaves the bytes as they are).
func writeWSFrame(conn *tls.Conn, payload []byte) error {
	head := []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint64(head[2:10], uint64(len(payload)))
	if _, err := conn.Write(head); err != nil {
		return err
	}
	_, err := conn.Write(payload)
	return err
}
