package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/moby/spdystream"
	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/exec-proxy/exec-proxy/pkg/proxy/kubeletconn"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// flood is the fake container's "flood KIB": it writes at least KIB KiB, and on until the
// kubelet's socket holds output it could not send yet (the reader is slower than it), then exits; the kubelet then closes with
// that output still in its kernel, as a real kubelet does when a command writes far ahead.
func flood(ctx context.Context, out io.Writer, kib int) error {
	tc, _ := ctx.Value(fakeKubeletKey{}).(*tls.Conn)
	if tc == nil {
		return fmt.Errorf("flood: no kubelet connection")
	}
	sock := tc.NetConn().(*kubeletSocket)
	raw, err := sock.SyscallConn()
	if err != nil {
		return err
	}
	var all []byte
	chunk := make([]byte, 32<<10)
	for unsent := 0; unsent < 4<<10 || len(all) < kib<<10; {
		for i := range chunk {
			chunk[i] = byte(len(all)+i) ^ byte((len(all)+i)>>8)
		}
		if _, err := out.Write(chunk); err != nil {
			return err
		}
		all = append(all, chunk...)
		if err := raw.Control(func(fd uintptr) { unsent, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQNSD) }); err != nil {
			return err
		}
	}
	sock.k.flooded <- all
	return nil
}

// spdyExecClient is the client side of an exec (stdout only) over spdystream, as client-go's v4
// executor runs it, that sends a PING when told: the kubelet's (and the stream translator's)
// keep-alive, which client-go sends on a timer.
type spdyExecClient struct {
	conn              *spdystream.Connection
	errStream, stdout *spdystream.Stream
}

func newSPDYExecClient(t *testing.T, nc net.Conn) *spdyExecClient {
	t.Helper()
	conn, err := spdystream.NewConnection(nc, false)
	if err != nil {
		t.Fatal(err)
	}
	go conn.Serve(spdystream.NoOpStreamHandler)
	c := &spdyExecClient{conn: conn}
	for _, s := range []struct {
		typ    string
		stream **spdystream.Stream
	}{{"error", &c.errStream}, {"stdout", &c.stdout}} {
		h := http.Header{}
		h.Set("streamType", s.typ)
		if *s.stream, err = conn.CreateStream(h, nil, false); err != nil {
			t.Fatal(err)
		}
		if err := (*s.stream).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// run reads stdout (at most at bytesPerSec, 0: as it comes) and the exit status, and sends a PING
// once the kubelet closed its connection.
func (c *spdyExecClient) run(k *fakeKubelet, bytesPerSec int) (stdout []byte, status metav1.Status, err error) {
	go func() {
		<-k.closedTCP
		_, _ = c.conn.Ping() // answered once exec-proxy caught up, or never: the connection ends
	}()
	errc := make(chan error, 1)
	go func() {
		b, err := io.ReadAll(c.errStream)
		if err == nil && len(b) > 0 {
			err = json.Unmarshal(b, &status)
		}
		errc <- err
	}()
	var lim *rate.Limiter
	if bytesPerSec > 0 {
		lim = rate.NewLimiter(rate.Limit(bytesPerSec), 32<<10)
	}
	buf := make([]byte, 32<<10)
	for {
		n, rerr := c.stdout.Read(buf)
		stdout = append(stdout, buf[:n]...)
		if rerr != nil {
			break
		}
		if lim != nil {
			_ = lim.WaitN(context.Background(), n)
		}
	}
	err = <-errc
	_ = c.conn.Close()
	return stdout, status, err
}

// bufConn reads what r buffered of a connection first.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func checkFlood(t *testing.T, k *fakeKubelet, stdout []byte, status metav1.Status, err error) {
	t.Helper()
	want := <-k.flooded
	if err != nil || status.Status != metav1.StatusSuccess {
		t.Errorf("exit status %+v, %v; want Success", status, err)
	}
	if !bytes.Equal(stdout, want) {
		t.Errorf("%d bytes of stdout arrived of %d, the same: %v", len(stdout), len(want), bytes.HasPrefix(want, stdout))
	}
}

// TestThrottledSessionKeepsItsTail: a command writes far ahead of the session's limit and ends;
// the kubelet closes with output still in its socket, and the client's keep-alive (a SPDY PING)
// comes after that. Were it relayed at once, the kubelet's kernel would answer it with a reset
// and drop the output it had not sent: the end of stdout and the exit status. Over SPDY the PING
// comes from the client; over WebSocket the stream translator sends it on its connection to the
// kubelet, as here.
func TestThrottledSessionKeepsItsTail(t *testing.T) {
	checkLeaks(t)
	const limit = 1 << 20
	kubelet := newFakeKubelet(t)
	p := newTestProxier(t, kubelet.caFile, Limits{MaxBytesPerSecSession: limit}, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t)))

	t.Run("spdy", func(t *testing.T) {
		srv, records := frontWithRecords(t, p)
		nc, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		fmt.Fprintf(nc, "POST /p?command=flood&command=1024&container=a&stdout=true HTTP/1.1\r\nHost: x\r\nX-Test-User: alice\r\n"+
			"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n")
		br := bufio.NewReader(nc)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v, %v", resp, err)
		}
		stdout, status, err := newSPDYExecClient(t, bufConn{nc, br}).run(kubelet, 0)
		checkFlood(t, kubelet, stdout, status, err)
		if rec := <-records; rec.ExitCode != "0" || rec.Reason != session.ReasonExited {
			t.Errorf("record: exit %q, reason %q", rec.ExitCode, rec.Reason)
		}
	})

	t.Run("translator's connection", func(t *testing.T) {
		s := testSession(t, Identity{Node: "n1", Address: strings.TrimPrefix(kubelet.URL, "https://")}, limit)
		if err := s.kubelet.Dial(context.Background(), p.transport, s.traffic.out != nil, false); err != nil {
			t.Fatal(err)
		}
		toKubelet, err := p.translator.DialContext(kubeletconn.WithSide(context.Background(), s.kubelet), "tcp", s.Address)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(toKubelet, "POST /exec/ns/p/a?command=flood&command=3072&output=1 HTTP/1.1\r\nHost: %s\r\n"+
			"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n", s.Address)
		br := bufio.NewReader(toKubelet)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v, %v", resp, err)
		}
		// The translator reads its connection as fast as the client takes stdout, at the limit; spdystream
		// reads up to 50 frames ahead (1.6 MiB here): the command writes more than that.
		stdout, status, err := newSPDYExecClient(t, bufConn{toKubelet, br}).run(kubelet, 2*limit)
		checkFlood(t, kubelet, stdout, status, err)
		s.kubelet.EndTranslator()
	})
}
