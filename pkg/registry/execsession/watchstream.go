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
	stdinChannel  = 0
	stdoutChannel = 1
	errorChannel  = 3
	resizeChannel = 4
)

// watchProtocols: kubectl 1.30 and later speak v5 (the kubelet's own attach server speaks v4 and
// older only, so a watch over WebSocket is served here); v4 for older clients. joinProtocols
// likewise, with stdin read.
var watchProtocols, joinProtocols = channelProtocols(wsstream.IgnoreChannel), channelProtocols(wsstream.ReadChannel)

// channelProtocols are the protocols of a watch whose stdin channel is stdin: ignored (a watch is
// read-only) or read (a join). stderr is ignored; resize is read only to learn that the watcher
// left (its channel ends when the connection does).
func channelProtocols(stdin wsstream.ChannelType) map[string]wsstream.ChannelProtocolConfig {
	channels := []wsstream.ChannelType{stdin, wsstream.WriteChannel, wsstream.IgnoreChannel,
		wsstream.WriteChannel, wsstream.ReadChannel}
	config := wsstream.ChannelProtocolConfig{Binary: true, Channels: channels}
	return map[string]wsstream.ChannelProtocolConfig{"v5.channel.k8s.io": config, "v4.channel.k8s.io": config}
}

// watchFunc writes the session's terminal to out until ctx ends, reading the watcher's stdin from
// in (a join; nil for a watch); its error ends the watch.
type watchFunc func(ctx context.Context, in io.Reader, out io.Writer) error

// serveWatch runs watch over the client's protocol: WebSocket, or SPDY through the kubelet's own
// attach server; with stdin, the client's stdin is read. A watch that fails tells the client why
// in a Status, as attach does.
func serveWatch(w http.ResponseWriter, req *http.Request, idle time.Duration, stdin bool, watch watchFunc) {
	if !wsstream.IsWebSocketRequest(req) {
		attacher := attacherFunc(func(ctx context.Context, in io.Reader, out io.WriteCloser) error { return watch(ctx, in, out) })
		criremotecommand.ServeAttach(w, req, attacher, "", "", "", &criremotecommand.Options{Stdin: stdin, Stdout: true, TTY: true},
			idle, 30*time.Second, []string{"v4.channel.k8s.io"})
		return
	}
	protocols := watchProtocols
	if stdin {
		protocols = joinProtocols
	}
	conn := wsstream.NewConn(protocols)
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
	var in io.Reader
	if stdin {
		in = streams[stdinChannel]
	}
	if err := watch(ctx, in, streams[stdoutChannel]); err != nil {
		status = metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonInternalError, Message: err.Error()}
	}
	if b, err := json.Marshal(status); err == nil {
		_, _ = streams[errorChannel].Write(b)
	}
}

// attacherFunc is a watch as the kubelet's attach server runs it: output, and a join's stdin.
type attacherFunc func(ctx context.Context, in io.Reader, out io.WriteCloser) error

func (f attacherFunc) AttachContainer(ctx context.Context, _, _, _ string, in io.Reader, out, _ io.WriteCloser, _ bool, _ <-chan criremotecommand.TerminalSize) error {
	return f(ctx, in, out)
}
