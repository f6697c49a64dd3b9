// Package streamtranslator is kube-apiserver's stream translator (a WebSocket v5 exec or attach
// client, relayed to a kubelet that speaks SPDY alone) on exec-proxy's own SPDY client connection
// (package spdyclient) instead of spdystream's. Upstream's StreamTranslatorHandler builds its
// SPDY round tripper itself, so its ServeHTTP and the unexported parts of websocket.go it uses are
// here, adapted from k8s.io/apiserver/pkg/util/proxy (Copyright 2023 The Kubernetes Authors,
// Apache License 2.0); the remotecommand protocol code is client-go's, unchanged.
package streamtranslator

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	constants "k8s.io/apimachinery/pkg/util/remotecommand"
	upstream "k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/apiserver/pkg/util/proxy/metrics"
	"k8s.io/client-go/tools/remotecommand"
	clientspdy "k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"

	"github.com/exec-proxy/exec-proxy/pkg/wire/spdyclient"
)

// pingPeriod is how often the SPDY connection writes a PING (upstream's translator's).
const pingPeriod = 5 * time.Second

// Handler is upstream's StreamTranslatorHandler, without MaxBytesPerSec (exec-proxy never
// throttles the translator's streams), dialing the kubelet with Dial.
type Handler struct {
	// Location is the kubelet's URL for the exec or attach.
	Location *url.URL
	// Dial connects to the kubelet: the stream translator's transport's DialContext.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Options are the streams the request asked for.
	Options upstream.Options
}

// New is a Handler for location.
func New(location *url.URL, dial func(ctx context.Context, network, address string) (net.Conn, error), opts upstream.Options) *Handler {
	return &Handler{Location: location, Dial: dial, Options: opts}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	// Create WebSocket server, including particular streams requested. If this websocket
	// endpoint is not able to be upgraded, the websocket library will return errors
	// to the client.
	websocketStreams, err := webSocketServerStreams(req, w, h.Options)
	if err != nil {
		// Client error increments bad request status code.
		metrics.IncStreamTranslatorRequest(req.Context(), strconv.Itoa(http.StatusBadRequest))
		return
	}
	defer websocketStreams.conn.Close()

	// Creating SPDY executor, ensuring redirects are not followed.
	upgrader := &spdyclient.Upgrader{Dial: h.Dial, PingPeriod: pingPeriod}
	spdyExecutor, err := remotecommand.NewSPDYExecutorRejectRedirects(
		upgrader,
		clientspdy.NewUpgraderForStreaming(upgrader),
		"POST",
		h.Location,
	)
	if err != nil {
		metrics.IncStreamTranslatorRequest(req.Context(), strconv.Itoa(http.StatusInternalServerError))
		websocketStreams.writeStatus(apierrors.NewInternalError(err)) //nolint:errcheck
		return
	}

	// Wire the WebSocket server streams output to the SPDY client input.
	opts := remotecommand.StreamOptions{}
	if h.Options.Stdin {
		opts.Stdin = websocketStreams.stdinStream
	}
	if h.Options.Stdout {
		opts.Stdout = websocketStreams.stdoutStream
	}
	if h.Options.Stderr {
		opts.Stderr = websocketStreams.stderrStream
	}
	if h.Options.Tty {
		opts.Tty = true
		opts.TerminalSizeQueue = &translatorSizeQueue{resizeChan: websocketStreams.resizeChan}
	}
	// Start the SPDY client with connected streams. Output from the WebSocket server
	// streams will be forwarded into the SPDY client. Report SPDY execution errors
	// through the websocket error stream.
	err = spdyExecutor.StreamWithContext(req.Context(), opts)
	if err != nil {
		//nolint:errcheck   // Ignore writeStatus returned error
		if statusErr, ok := err.(*apierrors.StatusError); ok {
			// Increment status code returned within status error.
			metrics.IncStreamTranslatorRequest(req.Context(), strconv.Itoa(int(statusErr.Status().Code)))
			websocketStreams.writeStatus(statusErr)
		} else if exitErr, ok := err.(exec.CodeExitError); ok && exitErr.Exited() {
			// Returned an exit code from the container, so not an error in
			// stream translator--add StatusOK to metrics.
			metrics.IncStreamTranslatorRequest(req.Context(), strconv.Itoa(http.StatusOK))
			websocketStreams.writeStatus(codeExitToStatusError(exitErr))
		} else {
			metrics.IncStreamTranslatorRequest(req.Context(), strconv.Itoa(http.StatusInternalServerError))
			websocketStreams.writeStatus(apierrors.NewInternalError(err))
		}
		return
	}

	metrics.IncStreamTranslatorRequest(req.Context(), strconv.Itoa(http.StatusOK))
	// Write the success status back to the WebSocket client.
	//nolint:errcheck
	websocketStreams.writeStatus(&apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusSuccess,
	}})
}

// translatorSizeQueue feeds the size events from the WebSocket
// resizeChan into the SPDY client input. Implements TerminalSizeQueue
// interface.
type translatorSizeQueue struct {
	resizeChan chan remotecommand.TerminalSize
}

func (t *translatorSizeQueue) Next() *remotecommand.TerminalSize {
	size, ok := <-t.resizeChan
	if !ok {
		return nil
	}
	return &size
}

// codeExitToStatusError converts a passed CodeExitError to the type necessary
// to send through an error stream using "writeStatus".
func codeExitToStatusError(exitErr exec.CodeExitError) *apierrors.StatusError {
	rc := exitErr.ExitStatus()
	return &apierrors.StatusError{
		ErrStatus: metav1.Status{
			Status: metav1.StatusFailure,
			Reason: constants.NonZeroExitCodeReason,
			Details: &metav1.StatusDetails{
				Causes: []metav1.StatusCause{
					{
						Type:    constants.ExitCodeCauseType,
						Message: fmt.Sprintf("%d", rc),
					},
				},
			},
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", exitErr),
		},
	}
}
