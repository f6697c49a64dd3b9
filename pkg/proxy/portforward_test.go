package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// TestPortForwardThroughProxy forwards one stream over SPDY and over WebSocket (client-go's tunnel,
// as kubectl ≥ 1.31), to a kubelet that takes SPDY only (the tunnel undone here) and to one that
// serves WebSocket itself (the tunnel passed through): the data and the record read passively agree.
func TestPortForwardThroughProxy(t *testing.T) {
	checkLeaks(t)
	for _, k := range []struct {
		name       string
		webSockets bool
	}{{"kubelet-spdy", false}, {"kubelet-websocket", true}} {
		t.Run(k.name, func(t *testing.T) {
			kubelet := newFakeKubeletWith(t, fakeKubeletOptions{webSockets: k.webSockets})
			n := nodeAt("n1", "127.0.0.1", kubelet.port(t))
			if k.webSockets {
				n.Status.DeclaredFeatures = []string{nodeconn.ExtendWebSocketsToKubelet}
			}
			p := newTestProxier(t, kubelet.caFile, Limits{}, runningPod("p", "n1", "a"), n)
			srv, records := portForwardFront(t, p)
			for _, protocol := range []string{"spdy", "websocket"} {
				t.Run(protocol, func(t *testing.T) {
					got := forwardOnce(t, srv.URL, protocol, "hello")
					if got != "8080:hello" {
						t.Errorf("the container answered %q, want %q", got, "8080:hello")
					}
					wantUpgrade := "SPDY/3.1"
					if protocol == "websocket" && k.webSockets {
						wantUpgrade = "websocket"
					}
					if h := kubelet.header.Load(); h == nil || !strings.EqualFold(h.Get("Upgrade"), wantUpgrade) {
						t.Errorf("the kubelet was asked to upgrade to %q, want %q", h.Get("Upgrade"), wantUpgrade)
					}
					select {
					case rec := <-records:
						if rec.StreamBytes["data"] != int64(len("hello")+len("8080:hello")) {
							t.Errorf("record: streams %v, want %d data bytes both ways", rec.StreamBytes, len("hello")+len("8080:hello"))
						}
					case <-time.After(10 * time.Second):
						t.Fatal("no record")
					}
				})
			}
		})
	}
}

// portForwardFront serves port-forward sessions to pod p on port 8080 through p, and hands out each
// session's audit record once it has ended.
func portForwardFront(t *testing.T, p *Proxier) (*httptest.Server, <-chan sessionaudit.Record) {
	return frontOf(t, p, func(*http.Request) session.Request {
		return session.Request{Kind: session.KindPortForward, Namespace: "ns", Pod: "p", PortForward: &corev1.PodPortForwardOptions{Ports: []int32{8080}}}
	})
}

// forwardOnce opens a port-forward session over protocol, sends data on one stream to port 8080,
// and returns what came back.
func forwardOnce(t *testing.T, base, protocol, data string) string {
	t.Helper()
	u, _ := url.Parse(base + "/p/portforward?ports=8080")
	cfg := &rest.Config{Host: base}
	var dialer httpstream.Dialer
	var err error
	if protocol == "websocket" {
		dialer, err = portforward.NewSPDYOverWebsocketDialerForStreaming(u, cfg)
	} else {
		rt, upgrader, rerr := spdy.RoundTripperFor(cfg)
		if rerr != nil {
			t.Fatal(rerr)
		}
		dialer = spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: rt}, "POST", u)
	}
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	headers := http.Header{}
	headers.Set(corev1.StreamType, corev1.StreamTypeError)
	headers.Set(corev1.PortHeader, "8080")
	headers.Set(corev1.PortForwardRequestIDHeader, "0")
	errStream, err := conn.CreateStream(headers)
	if err != nil {
		t.Fatalf("error stream: %v", err)
	}
	_ = errStream.Close() // the client writes nothing on it
	headers.Set(corev1.StreamType, corev1.StreamTypeData)
	stream, err := conn.CreateStream(headers)
	if err != nil {
		t.Fatalf("data stream: %v", err)
	}
	if _, err := io.WriteString(stream, data); err != nil {
		t.Fatal(err)
	}
	_ = stream.Close() // half-close: the container answers once it has read all
	got, err := io.ReadAll(stream)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return string(got)
}
