package proxy

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/exec-proxy/exec-proxy/pkg/recording"
)

// streamStats is what a skimmer learned of a session's streams, read passively from the frames
// crossing the client connection: bytes per stream, resizes, and the exit code from the error
// stream's Status.
type streamStats struct {
	// reading is true while a skimmer follows the frames; onPayload is called for each payload
	// or resize, so that keep-alive pings do not hold a session open.
	reading   atomic.Bool
	onPayload func()
	// recording, when set, is the recording.Sink that receives the payload as asciicast events.
	recording atomic.Value
	// onClientProtocolError is called when the client's frames are not the protocol's.
	onClientProtocolError func(why string)

	// shape is what the request asked for, which decides the streams the kubelet reads; set
	// before the skimmer is made.
	shape sessionShape

	mu         sync.Mutex
	bytes      map[string]int64
	resizes    int
	resize     resizeReader    // the resize stream; only the client's reader feeds it
	ports      map[string]bool // port-forward: the ports streams were opened for
	exitCode   string
	why        string // why the exit code is unknown, when it is
	statusSeen bool
}

// sessionShape is what a session's request asked for. The kubelet reads only the streams (SPDY) or
// channels (WebSocket) it was asked for; a reader that follows others would record what never
// reached the container.
type sessionShape struct {
	// known is false for the stream translator's kubelet leg and in tests: every exec stream
	// type is then taken, each once.
	known       bool
	portForward bool
	// ports: port-forward's query ports. SPDY streams name their own port (the kubelet takes the
	// stream's port header, never the query), so a stream to a port the query did not name is
	// refused; none named: any port.
	ports                      []int32
	stdin, stdout, stderr, tty bool
}

// spdyStreamAllowed tells whether the kubelet reads a client's SPDY stream of type typ in an exec
// or attach negotiated with protocol (k8s.io/kubelet/pkg/cri/streaming/remotecommand's
// waitForStreams: the first streams of the types it expects, as many as it expects; a stream
// beyond them is never replied to and stops spdystream's frame queue).
func (sh sessionShape) spdyStreamAllowed(typ, protocol string) bool {
	resize := protocol == "v3.channel.k8s.io" || protocol == "v4.channel.k8s.io" || protocol == "v5.channel.k8s.io"
	if !sh.known {
		return typ == "error" || typ == "stdin" || typ == "stdout" || typ == "stderr" || typ == "resize"
	}
	switch typ {
	case "error":
		return true
	case "stdin":
		return sh.stdin
	case "stdout":
		return sh.stdout
	case "stderr":
		return sh.stderr
	case "resize":
		return sh.tty && resize
	}
	return false
}

// portAllowed tells whether a port-forward stream to port (a port header the kubelet parsed)
// was asked for.
func (sh sessionShape) portAllowed(port uint16) bool {
	if len(sh.ports) == 0 {
		return true
	}
	return slices.Contains(sh.ports, int32(port))
}

func newStreamStats() *streamStats {
	return &streamStats{bytes: map[string]int64{}, ports: map[string]bool{}}
}

func (s *streamStats) port(p string) {
	if p == "" {
		return
	}
	s.mu.Lock()
	s.ports[p] = true
	s.mu.Unlock()
}

// portCount is how many ports streams were opened for, with p.
func (s *streamStats) portCount(p string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ports[p] {
		return len(s.ports)
	}
	return len(s.ports) + 1
}

// forwardedPorts lists the ports a port-forward opened streams for.
func (s *streamStats) forwardedPorts() []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int32
	for p := range s.ports {
		if n, err := strconv.ParseUint(p, 10, 16); err == nil {
			out = append(out, int32(n))
		}
	}
	slices.Sort(out)
	return out
}

func (s *streamStats) add(stream string, n int) {
	if stream == "" || n == 0 {
		return
	}
	s.payload()
	s.mu.Lock()
	s.bytes[stream] += int64(n)
	s.mu.Unlock()
}

func (s *streamStats) streamBytes(stream string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes[stream]
}

func (s *streamStats) payload() {
	if s.onPayload != nil {
		s.onPayload()
	}
}

// record hands payload of stream to the recording, if any; data is copied before it returns.
func (s *streamStats) record(stream string, data []byte) {
	r, _ := s.recording.Load().(recording.Sink)
	if r == nil || len(data) == 0 {
		return
	}
	switch stream {
	case "stdout", "stderr":
		r.Add("o", data)
	case "stdin":
		r.Add("i", data)
	}
}

// recordsStream reports whether stream's bytes are wanted, so a reader unmasks them only then.
func (s *streamStats) recordsStream(stream string) bool {
	r, _ := s.recording.Load().(recording.Sink)
	return r != nil && (stream == "stdout" || stream == "stderr" || (stream == "stdin" && r.Stdin()))
}

// resized reads more of the client's resize stream and counts the terminal sizes it completes;
// an error says the stream is not terminal sizes, as the kubelet reads them.
func (s *streamStats) resized(p []byte) error {
	s.payload()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resize.feed(p, func(size remotecommand.TerminalSize) {
		s.resizes++
		if r, _ := s.recording.Load().(recording.Sink); r != nil {
			r.Add("r", []byte(fmt.Sprintf("%dx%d", size.Width, size.Height)))
		}
	})
}

// unknown records why the exit code cannot be known; the first reason wins.
func (s *streamStats) unknown(why string) {
	s.mu.Lock()
	if s.why == "" {
		s.why = why
	}
	s.mu.Unlock()
}

// told reports whether an error stream message (the exit status) has passed.
func (s *streamStats) told() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exitCode != "" || s.statusSeen
}

// clientProtocolError says the client's frames are not the protocol's: they can no longer be
// followed, and the session is told (onClientProtocolError).
func (s *streamStats) clientProtocolError(why string) {
	s.lost(why)
	if s.onClientProtocolError != nil {
		s.onClientProtocolError(why)
	}
}

// lost says the frames can no longer be followed: activity falls back to every byte.
func (s *streamStats) lost(why string) {
	s.reading.Store(false)
	s.unknown(why)
}

// status reads the error stream's message: a Status (v4 and later) or, before v4, plain text.
func (s *streamStats) status(msg []byte) {
	var st metav1.Status
	if err := json.Unmarshal(msg, &st); err != nil || st.Status == "" {
		s.unknown(fmt.Sprintf("the kubelet reported an error: %.200s", msg))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statusSeen = true
	switch {
	case st.Status == metav1.StatusSuccess:
		s.exitCode = "0"
	case st.Reason == "NonZeroExitCode" && st.Details != nil:
		for _, c := range st.Details.Causes {
			if c.Type == "ExitCode" {
				s.exitCode = c.Message
			}
		}
	}
	if s.exitCode == "" && s.why == "" {
		s.why = "the kubelet reported an error: " + st.Message
	}
}

// result returns bytes per stream, resizes, and the exit code or "unknown: <why>".
func (s *streamStats) result() (map[string]int64, int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	bytes := make(map[string]int64, len(s.bytes))
	for k, v := range s.bytes {
		bytes[k] = v
	}
	code := s.exitCode
	if code == "" {
		why := s.why
		if why == "" {
			why = "the session ended without an exit status"
		}
		code = "unknown: " + why
	}
	return bytes, s.resizes, code
}

// skimmer reads a session's frames as they pass, never changing or holding them.
type skimmer interface {
	fromClient(p []byte)
	toClient(p []byte)
	close() // after the session's connections are closed
}

// newSkimmer picks the reader for the negotiated protocol.
func newSkimmer(upgrade, protocol string, stats *streamStats) skimmer {
	switch {
	case strings.EqualFold(upgrade, "websocket") && strings.Contains(protocol, "channel.k8s.io"):
		stats.reading.Store(true)
		return newWSSkimmer(protocol, stats)
	case strings.EqualFold(upgrade, "websocket") && strings.HasPrefix(protocol, "SPDY/3.1+"):
		stats.reading.Store(true)
		return newWSTunnelSkimmer(stats)
	case strings.HasPrefix(strings.ToUpper(upgrade), "SPDY/"):
		stats.reading.Store(true)
		return newSPDYSkimmerFor(stats, protocol)
	}
	stats.unknown(fmt.Sprintf("protocol %q %q is not read", upgrade, protocol))
	return nopSkimmer{}
}

type nopSkimmer struct{}

func (nopSkimmer) fromClient([]byte) {}
func (nopSkimmer) toClient([]byte)   {}
func (nopSkimmer) close()            {}

// remotecommand stream names by WebSocket channel, as kubectl and the kubelet number them.
var wsChannels = map[byte]string{0: "stdin", 1: "stdout", 2: "stderr", 3: "error", 4: "resize"}

func decodeBase64(msg []byte) []byte {
	out, err := base64.StdEncoding.DecodeString(string(msg))
	if err != nil {
		return msg
	}
	return out
}
