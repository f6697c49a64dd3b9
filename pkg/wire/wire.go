// Package wire is what exec-proxy's readers of the SPDY/3.1 and WebSocket protocols share: the
// Observer a frame reader reports to, the Shape of what a request asked for, the frame writer and
// its buffers, and the reads that gather what a connection already received (ReadMore). The
// protocols themselves are in packages spdy and websocket; TLS record batching is in tlsrecord.
// Nothing here knows of a session: a frame reader hears bytes and tells an Observer the facts.
package wire

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/remotecommand"
)

// MaxErrorMessage bounds what is kept of an error stream's message.
const MaxErrorMessage = 64 << 10

// FrameReader reads a session's frames as they pass, never changing or holding them.
type FrameReader interface {
	FromClient(p []byte)
	ToClient(p []byte)
	Close() // after the session's connections are closed
}

// Nop is the FrameReader of a protocol that is not read.
type Nop struct{}

func (Nop) FromClient([]byte) {}
func (Nop) ToClient([]byte)   {}
func (Nop) Close()            {}

// Observer hears what a FrameReader read. Each direction calls it from the goroutine that feeds
// that direction, so calls may come from two goroutines at once.
type Observer interface {
	// Payload: n bytes of stream's payload passed.
	Payload(stream string, n int)
	// Wants tells whether the observer takes stream's bytes (Data): only then does a reader
	// unmask or copy them. Payload a reader decoded anyway (base64) goes to Data regardless.
	Wants(stream string) bool
	// Data is payload of stream; p is the observer's only during the call.
	Data(stream string, p []byte)
	// Resized: bytes of the client's resize stream passed, completing sizes (none while a size is
	// incomplete).
	Resized(sizes []remotecommand.TerminalSize)
	// Status is the error stream's whole message: a Status (v4 and later) or, before v4, plain
	// text (see ExitStatus).
	Status(msg []byte)
	// PortForwarded: a port-forward stream was opened for port.
	PortForwarded(port uint16)
	// Lost: one direction's frames can no longer be followed.
	Lost(why string)
	// ClientProtocolError: the client's frames are not the protocol's, and are read no further;
	// the server would not read them as they were read here.
	ClientProtocolError(why string)
}

// Shape is what a session's request asked for. The kubelet reads only the streams (SPDY) or
// channels (WebSocket) it was asked for; a reader that follows others would record what never
// reached the container.
type Shape struct {
	// Known is false for the stream translator's connection to the kubelet and in tests: every exec stream
	// type is then taken, each once.
	Known       bool
	PortForward bool
	// Ports: port-forward's query ports. SPDY streams name their own port (the kubelet takes the
	// stream's port header, never the query), so a stream to a port the query did not name is
	// refused; none named: any port.
	Ports                      []int32
	Stdin, Stdout, Stderr, TTY bool
}

// ExitStatus is the exit code an error stream's messages tell, or why it is unknown. Not for
// concurrent use.
type ExitStatus struct {
	code string
	why  string // why the exit code is unknown, when it is
	seen bool   // a Status was read
}

// Unknown records why the exit code cannot be known; the first reason wins.
func (e *ExitStatus) Unknown(why string) {
	if e.why == "" {
		e.why = why
	}
}

// Told reports whether an error stream message (the exit status) has passed.
func (e *ExitStatus) Told() bool { return e.code != "" || e.seen }

// Read reads the error stream's message: a Status (v4 and later) or, before v4, plain text.
func (e *ExitStatus) Read(msg []byte) {
	var st metav1.Status
	if err := json.Unmarshal(msg, &st); err != nil || st.Status == "" {
		e.Unknown(fmt.Sprintf("the kubelet reported an error: %.200s", msg))
		return
	}
	e.seen = true
	switch {
	case st.Status == metav1.StatusSuccess:
		e.code = "0"
	case st.Reason == "NonZeroExitCode" && st.Details != nil:
		for _, c := range st.Details.Causes {
			if c.Type == "ExitCode" {
				e.code = c.Message
			}
		}
	}
	if e.code == "" && e.why == "" {
		e.why = "the kubelet reported an error: " + st.Message
	}
}

// Code is the exit code, or "unknown: <why>".
func (e *ExitStatus) Code() string {
	if e.code != "" {
		return e.code
	}
	why := e.why
	if why == "" {
		why = "the session ended without an exit status"
	}
	return "unknown: " + why
}
