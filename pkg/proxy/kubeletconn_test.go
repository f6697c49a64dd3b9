package proxy

import (
	"testing"

	"github.com/exec-proxy/exec-proxy/internal/poll"
	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
)

func TestKubeletIsSentOnlyItsHeaders(t *testing.T) {
	checkLeaks(t)
	kubelet := newFakeKubelet(t)
	p := newTestProxier(t, kubelet.caFile, Limits{}, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t)))
	srv := front(t, p)
	// The client's own headers (the front proxy's X-Remote-User, say): X-Test-User names the user.
	for _, protocol := range []string{"spdy", "websocket"} {
		t.Run(protocol, func(t *testing.T) {
			if out, err := execVia(t, srv, protocol, "alice", execCase{command: []string{"echo", "hi"}}); err != nil || out != "hi\n" {
				t.Fatalf("exec: %q %v", out, err)
			}
			h := *kubelet.header.Load()
			if v := h.Get("X-Test-User"); v != "" {
				t.Errorf("the kubelet was sent the client's X-Test-User: %q", v)
			}
			if h.Get("Upgrade") == "" || len(h.Values("X-Stream-Protocol-Version")) == 0 {
				t.Errorf("the kubelet lacks the upgrade's headers: %v", h)
			}
		})
	}
	poll.Until(t, func() bool { return len(p.Sessions()) == 0 })
}

func kubeletTransport(t *testing.T, kubelet *fakeKubelet) *nodeconn.Transport {
	t.Helper()
	tr, err := nodeconn.NewTransport(nodeconn.TransportConfig{CAFile: kubelet.caFile})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
