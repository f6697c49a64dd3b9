package proxy

import (
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/httpstream"
	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// The subprotocols a session may ask for, by transport and kind: what the stream translator and
// the kubelet (k8s.io/cri-streaming/pkg/streaming) serve. Checked before the kubelet is dialed, so
// a client asking for none of them gets a 400 that lists them, not the kubelet's bare 403.
var (
	spdyProtocols = map[session.Kind][]string{
		session.KindExec:        streamProtocols(remotecommandconsts.StreamProtocolV5Name),
		session.KindAttach:      streamProtocols(remotecommandconsts.StreamProtocolV5Name),
		session.KindPortForward: {"portforward.k8s.io"},
	}
	wsProtocols = map[session.Kind][]string{
		session.KindExec:        append(wsChannelProtocols(), remotecommandconsts.StreamProtocolV5Name),
		session.KindAttach:      append(wsChannelProtocols(), remotecommandconsts.StreamProtocolV5Name),
		session.KindPortForward: {"SPDY/3.1+portforward.k8s.io", "v4." + wsstream.ChannelWebSocketProtocol, "v4." + wsstream.Base64ChannelWebSocketProtocol},
	}
)

func streamProtocols(extra ...string) []string {
	return append(extra, remotecommandconsts.SupportedStreamingProtocols...)
}

func wsChannelProtocols() []string {
	return []string{"v4." + wsstream.ChannelWebSocketProtocol, "v4." + wsstream.Base64ChannelWebSocketProtocol,
		wsstream.ChannelWebSocketProtocol, wsstream.Base64ChannelWebSocketProtocol}
}

// checkUpgrade refuses a request that is not an upgrade to SPDY/3.1 or WebSocket with a protocol
// exec-proxy serves for kind. Over SPDY, no protocol asked for is the oldest one, as the kubelet takes it.
func checkUpgrade(req *http.Request, kind session.Kind) error {
	if !httpstream.IsUpgradeRequest(req) || req.Header.Get("Upgrade") == "" {
		return apierrors.NewBadRequest(fmt.Sprintf("%s needs a connection upgrade: send Connection: Upgrade with Upgrade: SPDY/3.1 or websocket, as kubectl does", kind))
	}
	var asked, served []string
	switch upgrade := strings.ToLower(req.Header.Get("Upgrade")); upgrade {
	case "spdy/3.1":
		asked, served = req.Header.Values(httpstream.HeaderProtocolVersion), spdyProtocols[kind]
	case "websocket":
		for _, v := range req.Header.Values("Sec-WebSocket-Protocol") {
			for _, p := range strings.Split(v, ",") {
				asked = append(asked, strings.TrimSpace(p))
			}
		}
		served = wsProtocols[kind]
	default:
		return apierrors.NewBadRequest(fmt.Sprintf("Upgrade: %s is not served: %s is served over SPDY/3.1 or websocket", req.Header.Get("Upgrade"), kind))
	}
	if len(asked) == 0 && strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
		// The kubelet would pick its unnamed protocol, which no frame reader here reads: refused,
		// so that no session runs unread and unrecorded. Every kubectl names one.
		return apierrors.NewBadRequest(fmt.Sprintf("a WebSocket upgrade must name a subprotocol in Sec-WebSocket-Protocol; served for %s: %v", kind, served))
	}
	if len(asked) == 0 {
		return nil
	}
	for _, a := range asked {
		for _, s := range served {
			if a == s {
				return nil
			}
		}
	}
	return apierrors.NewBadRequest(fmt.Sprintf("none of the requested protocols %v is served for %s over %s; served: %v",
		asked, kind, req.Header.Get("Upgrade"), served))
}
