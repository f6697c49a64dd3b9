package proxy

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/tools/remotecommand"

	"github.com/exec-proxy/exec-proxy/pkg/recording"
	"github.com/exec-proxy/exec-proxy/pkg/wire"
	"github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
	"github.com/exec-proxy/exec-proxy/pkg/wire/websocket"
)

// streamStats is what a frame reader learned of a session's streams, read passively from the
// frames crossing the client connection: bytes per stream, resizes, and the exit code from the
// error stream's Status. It is the wire.Observer of the session's frame reader.
type streamStats struct {
	// reading is true while a frame reader follows the frames; onPayload is called for each
	// payload or resize, so that keep-alive pings do not hold a session open.
	reading   atomic.Bool
	onPayload func()
	// recording, when set, is the recording.Sink that receives the payload as asciicast events.
	recording atomic.Value
	// onClientProtocolError is called when the client's frames are not the protocol's.
	onClientProtocolError func(why string)
	// overseen, set before the frames are read, hears a TTY session's terminal; nil: none.
	overseen *overseen

	mu      sync.Mutex
	bytes   map[string]int64
	resizes int
	ports   map[uint16]bool // port-forward: the ports streams were opened for
	exit    wire.ExitStatus
}

func newStreamStats() *streamStats {
	return &streamStats{bytes: map[string]int64{}, ports: map[uint16]bool{}}
}

// newFrameReader picks the frame reader for the negotiated protocol, reporting to s.
func (s *streamStats) newFrameReader(upgrade, protocol string, shape wire.Shape) wire.FrameReader {
	switch {
	case strings.EqualFold(upgrade, "websocket") && strings.Contains(protocol, "channel.k8s.io"):
		s.reading.Store(true)
		return websocket.NewFrameReader(protocol, shape, s)
	case strings.EqualFold(upgrade, "websocket") && strings.HasPrefix(protocol, "SPDY/3.1+"):
		s.reading.Store(true)
		return websocket.NewTunnelReader(shape, s)
	case strings.HasPrefix(strings.ToUpper(upgrade), "SPDY/"):
		s.reading.Store(true)
		return spdy.NewFrameReader(protocol, shape, s)
	}
	s.ExitUnknown(fmt.Sprintf("protocol %q %q is not read", upgrade, protocol))
	return wire.Nop{}
}

// PortForwarded notes a port a port-forward opened streams for.
func (s *streamStats) PortForwarded(p uint16) {
	s.mu.Lock()
	s.ports[p] = true
	s.mu.Unlock()
}

// forwardedPorts lists the ports a port-forward opened streams for.
func (s *streamStats) forwardedPorts() []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int32
	for p := range s.ports {
		out = append(out, int32(p))
	}
	slices.Sort(out)
	return out
}

// Payload counts n bytes of stream's payload.
func (s *streamStats) Payload(stream string, n int) {
	if stream == "" || n == 0 {
		return
	}
	s.payload()
	s.mu.Lock()
	s.bytes[stream] += int64(n)
	s.mu.Unlock()
}

func (s *streamStats) StreamBytes(stream string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes[stream]
}

func (s *streamStats) payload() {
	if s.onPayload != nil {
		s.onPayload()
	}
}

// Data hands payload of stream to the recording, if any; data is copied before it returns.
func (s *streamStats) Data(stream string, data []byte) {
	if s.overseen != nil && len(data) > 0 {
		s.overseen.data(stream, data)
	}
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

// Wants reports whether stream's bytes are recorded, so a reader unmasks them only then.
func (s *streamStats) Wants(stream string) bool {
	if s.overseen != nil && s.overseen.wants(stream) {
		return true
	}
	r, _ := s.recording.Load().(recording.Sink)
	return r != nil && (stream == "stdout" || stream == "stderr" || (stream == "stdin" && r.Stdin()))
}

// startRecording hands the payload from now on to sink too.
func (s *streamStats) startRecording(sink recording.Sink) { s.recording.Store(sink) }

// Resized counts the terminal sizes the client's resize stream completed; its bytes are payload.
func (s *streamStats) Resized(sizes []remotecommand.TerminalSize) {
	s.payload()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, size := range sizes {
		s.resizes++
		if s.overseen != nil {
			s.overseen.resize(int(size.Width), int(size.Height))
		}
		if r, _ := s.recording.Load().(recording.Sink); r != nil {
			r.Add("r", []byte(fmt.Sprintf("%dx%d", size.Width, size.Height)))
		}
	}
}

// ExitUnknown records why the exit code cannot be known; the first reason wins.
func (s *streamStats) ExitUnknown(why string) {
	s.mu.Lock()
	s.exit.Unknown(why)
	s.mu.Unlock()
}

// told reports whether an error stream message (the exit status) has passed.
func (s *streamStats) told() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exit.Told()
}

// ClientProtocolError says the client's frames are not the protocol's: they can no longer be
// followed, and the session is told (onClientProtocolError).
func (s *streamStats) ClientProtocolError(why string) {
	s.Lost(why)
	if s.onClientProtocolError != nil {
		s.onClientProtocolError(why)
	}
}

// Lost says the frames can no longer be followed: activity falls back to every byte.
func (s *streamStats) Lost(why string) {
	s.reading.Store(false)
	s.ExitUnknown(why)
}

// Status reads the error stream's message for the exit code.
func (s *streamStats) Status(msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exit.Read(msg)
}

// result returns bytes per stream, resizes, and the exit code or "unknown: <why>".
func (s *streamStats) result() (map[string]int64, int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	bytes := make(map[string]int64, len(s.bytes))
	for k, v := range s.bytes {
		bytes[k] = v
	}
	return bytes, s.resizes, s.exit.Code()
}
