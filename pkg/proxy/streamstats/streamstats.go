// Package streamstats is what a session's frames told, read passively by its frame readers: bytes
// per stream, resizes, the exit code, the ports forwarded. It hands their payload on to the
// recording and to the oversight.
package streamstats

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/tools/remotecommand"

	"github.com/exec-proxy/exec-proxy/pkg/oversight"
	"github.com/exec-proxy/exec-proxy/pkg/recording"
	"github.com/exec-proxy/exec-proxy/pkg/wire"
	"github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
	"github.com/exec-proxy/exec-proxy/pkg/wire/websocket"
)

// Hooks are what a session hears from its Stats; each may be nil.
type Hooks struct {
	// Payload is called for each payload or resize, so that keep-alive pings do not hold a
	// session open.
	Payload func()
	// ClientProtocolError is called when the client's frames are not the protocol's.
	ClientProtocolError func(why string)
	// Tap hears a TTY session's terminal.
	Tap *oversight.Tap
}

// Stats is what a frame reader learned of a session's streams, read passively from the frames
// crossing the client connection: bytes per stream, resizes, and the exit code from the error
// stream's Status. It is the wire.Observer of the session's frame reader.
type Stats struct {
	hooks Hooks
	// reading is true while a frame reader follows the frames.
	reading atomic.Bool
	// recording, when set, is the recording.Sink that receives the payload as asciicast events.
	recording atomic.Value

	mu      sync.Mutex
	bytes   map[string]int64
	resizes int
	ports   map[uint16]bool // port-forward: the ports streams were opened for
	exit    wire.ExitStatus
}

// New returns empty Stats that tell h.
func New(h Hooks) *Stats {
	return &Stats{hooks: h, bytes: map[string]int64{}, ports: map[uint16]bool{}}
}

// NewFrameReader picks the frame reader for the negotiated protocol, reporting to s.
func (s *Stats) NewFrameReader(upgrade, protocol string, shape wire.Shape) wire.FrameReader {
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

// Reading reports whether a frame reader follows the frames; if not, every byte is activity.
func (s *Stats) Reading() bool { return s.reading.Load() }

// PortForwarded notes a port a port-forward opened streams for.
func (s *Stats) PortForwarded(p uint16) {
	s.mu.Lock()
	s.ports[p] = true
	s.mu.Unlock()
}

// ForwardedPorts lists the ports a port-forward opened streams for.
func (s *Stats) ForwardedPorts() []int32 {
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
func (s *Stats) Payload(stream string, n int) {
	if stream == "" || n == 0 {
		return
	}
	s.payload()
	s.mu.Lock()
	s.bytes[stream] += int64(n)
	s.mu.Unlock()
}

func (s *Stats) StreamBytes(stream string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes[stream]
}

func (s *Stats) payload() {
	if s.hooks.Payload != nil {
		s.hooks.Payload()
	}
}

// Data hands payload of stream to the tap and the recording, if any; data is copied before it
// returns.
func (s *Stats) Data(stream string, data []byte) {
	if s.hooks.Tap != nil && len(data) > 0 {
		s.hooks.Tap.Data(stream, data)
	}
	r := s.Recording()
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
func (s *Stats) Wants(stream string) bool {
	if s.hooks.Tap != nil && s.hooks.Tap.Wants(stream) {
		return true
	}
	r := s.Recording()
	return r != nil && (stream == "stdout" || stream == "stderr" || (stream == "stdin" && r.Stdin()))
}

// StartRecording hands the payload from now on to sink too.
func (s *Stats) StartRecording(sink recording.Sink) { s.recording.Store(sink) }

// Recording is the sink the payload goes to; nil: none.
func (s *Stats) Recording() recording.Sink {
	r, _ := s.recording.Load().(recording.Sink)
	return r
}

// Resized counts the terminal sizes the client's resize stream completed; its bytes are payload.
func (s *Stats) Resized(sizes []remotecommand.TerminalSize) {
	s.payload()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, size := range sizes {
		s.resizes++
		if s.hooks.Tap != nil {
			s.hooks.Tap.Resize(int(size.Width), int(size.Height))
		}
		if r := s.Recording(); r != nil {
			r.Add("r", []byte(fmt.Sprintf("%dx%d", size.Width, size.Height)))
		}
	}
}

// ExitUnknown records why the exit code cannot be known; the first reason wins.
func (s *Stats) ExitUnknown(why string) {
	s.mu.Lock()
	s.exit.Unknown(why)
	s.mu.Unlock()
}

// Told reports whether an error stream message (the exit status) has passed.
func (s *Stats) Told() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exit.Told()
}

// ClientProtocolError says the client's frames are not the protocol's: they can no longer be
// followed, and the session is told (Hooks.ClientProtocolError).
func (s *Stats) ClientProtocolError(why string) {
	s.Lost(why)
	if s.hooks.ClientProtocolError != nil {
		s.hooks.ClientProtocolError(why)
	}
}

// Lost says the frames can no longer be followed: activity falls back to every byte.
func (s *Stats) Lost(why string) {
	s.reading.Store(false)
	s.ExitUnknown(why)
}

// Status reads the error stream's message for the exit code.
func (s *Stats) Status(msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exit.Read(msg)
}

// Result returns bytes per stream, resizes, and the exit code or "unknown: <why>".
func (s *Stats) Result() (map[string]int64, int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	bytes := make(map[string]int64, len(s.bytes))
	for k, v := range s.bytes {
		bytes[k] = v
	}
	return bytes, s.resizes, s.exit.Code()
}
