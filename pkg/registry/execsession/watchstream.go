package execsession

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	criremotecommand "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// The channels of a watch over WebSocket, as kubectl attach numbers them.
const (
	stdoutChannel = 1
	errorChannel  = 3
	resizeChannel = 4
)

// watchProtocols: kubectl 1.30 and later speak v5 (the kubelet's own attach server speaks v4 and
// older only, so a watch over WebSocket is served here); v4 for older clients.
var watchProtocols = func() map[string]wsstream.ChannelProtocolConfig {
	// stdin and stderr are ignored: a watch is read-only. resize is read only to learn that the
	// watcher left (its channel ends when the connection does).
	channels := []wsstream.ChannelType{wsstream.IgnoreChannel, wsstream.WriteChannel, wsstream.IgnoreChannel,
		wsstream.WriteChannel, wsstream.ReadChannel}
	config := wsstream.ChannelProtocolConfig{Binary: true, Channels: channels}
	return map[string]wsstream.ChannelProtocolConfig{"v5.channel.k8s.io": config, "v4.channel.k8s.io": config}
}()

// watchFunc writes the session's terminal to out until ctx ends; its error ends the watch.
type watchFunc func(ctx context.Context, out io.Writer) error

// serveWatch runs watch over the client's protocol: WebSocket, or SPDY through the kubelet's own
// attach server. A watch that fails tells the client why in a Status, as attach does.
func serveWatch(w http.ResponseWriter, req *http.Request, idle time.Duration, watch watchFunc) {
	if !wsstream.IsWebSocketRequest(req) {
		attacher := attacherFunc(func(ctx context.Context, out io.WriteCloser) error { return watch(ctx, out) })
		criremotecommand.ServeAttach(w, req, attacher, "", "", "", &criremotecommand.Options{Stdout: true, TTY: true},
			idle, 30*time.Second, []string{"v4.channel.k8s.io"})
		return
	}
	conn := wsstream.NewConn(watchProtocols)
	conn.SetIdleTimeout(idle)
	_, streams, err := conn.Open(w, req)
	if err != nil {
		return // Open answered the client
	}
	defer conn.Close()
	_, _ = streams[stdoutChannel].Write(nil) // tells the client its streams are ready, as the kubelet does
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	go func() { // the watcher left: its resize channel ends with the connection
		_, _ = io.Copy(io.Discard, io.LimitReader(streams[resizeChannel], 1<<20))
		cancel()
	}()
	status := metav1.Status{Status: metav1.StatusSuccess}
	if err := watch(ctx, streams[stdoutChannel]); err != nil {
		status = metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonInternalError, Message: err.Error()}
	}
	if b, err := json.Marshal(status); err == nil {
		_, _ = streams[errorChannel].Write(b)
	}
}

// attacherFunc is a watch as the kubelet's attach server runs it: output only.
type attacherFunc func(ctx context.Context, out io.WriteCloser) error

func (f attacherFunc) AttachContainer(ctx context.Context, _, _, _ string, _ io.Reader, out, _ io.WriteCloser, _ bool, _ <-chan criremotecommand.TerminalSize) error {
	return f(ctx, out)
}
