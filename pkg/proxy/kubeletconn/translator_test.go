package kubeletconn

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/clientconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/internal/leaktest"
	"github.com/exec-proxy/exec-proxy/pkg/wire/wiretest"
)

const translatorRequest = "POST /exec/demo/demo/main?command=true HTTP/1.1\r\nHost: 127.0.0.1:10250\r\n" +
	"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n"

// A translator's connection without its session's kubelet connection answers the translator with a
// Status, so that the client is told why, as the kubelet's own refusals are.
func TestTranslatorConnRefusedAtDial(t *testing.T) {
	leaktest.Check(t)
	other := NewSide("n1", "127.0.0.9:10250", noClient{})
	other.conn = &net.TCPConn{}
	for name, ctx := range map[string]context.Context{
		"no session":      context.Background(),
		"no kubelet conn": WithSide(context.Background(), NewSide("n1", "127.0.0.1:10250", noClient{})),
		"another kubelet": WithSide(context.Background(), other),
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := TranslatorTransport(&nodeconn.Transport{}).DialContext(ctx, "tcp", "127.0.0.1:10250")
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, translatorRequest); err != nil {
				t.Fatalf("the translator's request failed: %v", err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			var st metav1.Status
			if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusBadGateway || st.Code != http.StatusBadGateway || !strings.Contains(st.Message, "error dialing backend") {
				t.Errorf("answer %d, Status %d %q", resp.StatusCode, st.Code, st.Message)
			}
		})
	}
}

// The translator reads the kubelet's 101 alone: its response reader must not take the frames that
// follow in the same read, which it would drop.
func TestTranslatorConnAnswerAlone(t *testing.T) {
	leaktest.Check(t)
	conn, kubelet, b := dialConn(t)
	frame := []byte{0, 0, 0, 1, 0, 0, 0, 2, 'h', 'i'} // DATA, stream 1, 2 bytes
	go func() {
		req, err := http.ReadRequest(bufio.NewReader(kubelet))
		if err != nil || req.URL.Path != "/exec/demo/demo/main" {
			t.Errorf("the kubelet got %v, %v", req, err)
		}
		_, _ = io.WriteString(kubelet, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n"+string(frame))
	}()
	if _, err := io.WriteString(conn, translatorRequest); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 101") || !strings.HasSuffix(string(buf[:n]), "\r\n\r\n") {
		t.Fatalf("first read %q, %v: want the 101 alone", buf[:n], err)
	}
	if _, err := io.ReadFull(conn, buf[:len(frame)]); err != nil || string(buf[:len(frame)]) != string(frame) {
		t.Fatalf("then %q, %v: want the frame", buf[:len(frame)], err)
	}
	b.EndTranslator() // as the session's end does: the connection closes, and is counted done
	if _, err := kubelet.Write([]byte{0}); err == nil {
		t.Error("the kubelet's connection is still open")
	}
}

// spdystream stops reading at the kubelet's GOAWAY and closes with its own, which the kubelet,
// gone, does not take: that write must fail, not wait for a reading that has ended.
func TestTranslatorConnWriteAfterGoAway(t *testing.T) {
	leaktest.Check(t)
	conn, kubelet, b := dialConn(t)
	goAway := []byte{0x80, 3, 0, 7, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0}
	go func() {
		_, _ = http.ReadRequest(bufio.NewReader(kubelet))
		_, _ = io.WriteString(kubelet, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n")
		_, _ = kubelet.Write(goAway)
		_ = kubelet.Close()
	}()
	if _, err := io.WriteString(conn, translatorRequest); err != nil {
		t.Fatal(err)
	}
	if _, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(goAway))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatal(err)
	}
	written := make(chan error, 1)
	go func() { // as spdystream writes a GOAWAY: field by field
		var err error
		for i := 0; i < len(goAway) && err == nil; i += 4 {
			_, err = conn.Write(goAway[i : i+4])
		}
		written <- err
	}()
	select {
	case err := <-written:
		if err == nil {
			t.Error("a write to a kubelet that closed succeeded")
		}
	case <-time.After(10 * time.Second): // a hang, not a timing
		t.Fatal("the write to a kubelet that closed waits for a reading that has ended")
	}
	_ = conn.Close()
	b.conns.Wait()
}

// dialConn is the translator's connection of a session whose kubelet connection is a pipe to kubelet.
func dialConn(t *testing.T) (conn, kubelet net.Conn, b *Side) {
	t.Helper()
	ours, kubelet := net.Pipe()
	b = NewSide("n1", "127.0.0.1:10250", noClient{})
	b.conn = ours
	conn, err := TranslatorTransport(&nodeconn.Transport{}).DialContext(WithSide(context.Background(), b), "tcp", b.address)
	if err != nil {
		t.Fatal(err)
	}
	return conn, kubelet, b
}

// noClient is a session's client side that takes nothing directly.
type noClient struct{}

func (noClient) DirectConn() *clientconn.Conn       { return nil }
func (noClient) StdinRoute() *clientconn.StdinRoute { return nil }
func (noClient) Translated() Tally                  { return &wiretest.Observer{} }
