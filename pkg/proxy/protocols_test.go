package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

func TestCheckUpgrade(t *testing.T) {
	spdy := func(protocols ...string) http.Header {
		h := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"SPDY/3.1"}}
		for _, p := range protocols {
			h.Add("X-Stream-Protocol-Version", p)
		}
		return h
	}
	ws := func(protocols string) http.Header {
		h := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}
		if protocols != "" {
			h.Set("Sec-WebSocket-Protocol", protocols)
		}
		return h
	}
	cases := []struct {
		name    string
		kind    session.Kind
		header  http.Header
		refusal string // empty: served
	}{
		{"kubectl SPDY exec", session.KindExec, spdy("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io"), ""},
		{"no protocol is the oldest", session.KindExec, spdy(), ""},
		{"kubectl WebSocket exec", session.KindExec, ws("v5.channel.k8s.io, v4.channel.k8s.io"), ""},
		{"old WebSocket base64 attach", session.KindAttach, ws("base64.channel.k8s.io"), ""},
		{"SPDY port-forward", session.KindPortForward, spdy("portforward.k8s.io"), ""},
		{"WebSocket port-forward tunnel", session.KindPortForward, ws("SPDY/3.1+portforward.k8s.io"), ""},
		{"unknown SPDY protocol", session.KindExec, spdy("v99.channel.k8s.io"), "none of the requested protocols [v99.channel.k8s.io] is served for exec over SPDY/3.1"},
		{"exec protocol for port-forward", session.KindPortForward, spdy("v4.channel.k8s.io"), "is served for portforward"},
		{"WebSocket exec naming no protocol: the kubelet's unnamed one has no frame reader", session.KindExec, ws(""), "must name a subprotocol"},
		{"WebSocket port-forward naming no protocol", session.KindPortForward, ws(""), "must name a subprotocol"},
		{"unknown WebSocket protocol", session.KindExec, ws("chat, v99.channel.k8s.io"), "none of the requested protocols [chat v99.channel.k8s.io]"},
		{"not an upgrade", session.KindExec, http.Header{}, "exec needs a connection upgrade"},
		{"Connection: Upgrade without Upgrade", session.KindExec, http.Header{"Connection": {"Upgrade"}}, "exec needs a connection upgrade"},
		{"other upgrade", session.KindExec, http.Header{"Connection": {"Upgrade"}, "Upgrade": {"h2c"}}, "Upgrade: h2c is not served"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/", nil)
			req.Header = tc.header
			err := checkUpgrade(req, tc.kind)
			switch {
			case tc.refusal == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.refusal != "" && (err == nil || !strings.Contains(err.Error(), tc.refusal)):
				t.Errorf("got %v, want a refusal with %q", err, tc.refusal)
			}
		})
	}
}
