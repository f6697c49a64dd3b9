package spdyclient

import (
	"github.com/moby/spdystream/spdy"

	wirespdy "github.com/exec-proxy/exec-proxy/pkg/wire/spdy"
)

// handler acts on the kubelet's frames, from the reading goroutine.
type handler struct{ c *Conn }

func (h handler) Control(f wirespdy.ControlFrame) error {
	c := h.c
	switch f.Type {
	case spdy.TypeSynReply:
		if s := c.stream(f.Stream); s != nil && s.reply(f.Flags&spdy.ControlFlagFin != 0) {
			c.remove(s)
		}
	case spdy.TypeRstStream:
		if s := c.stream(f.Stream); s != nil {
			s.resetByKubelet()
		}
	case spdy.TypeHeaders:
		// spdystream hands a HEADERS frame to a ReceiveHeader that nothing calls, which stops
		// the stream's frame worker; here its headers are dropped, its FIN taken.
		if s := c.stream(f.Stream); s != nil && f.Flags&spdy.ControlFlagFin != 0 && s.remoteEnded() {
			c.remove(s)
		}
	case spdy.TypeSynStream:
		// spdystream's client takes a stream the server opens (client-go's no-op handler) and
		// replies; nothing would ever read it, so it is refused.
		return h.refuse(f.Stream)
	case spdy.TypePing:
		// A PING of the kubelet's (even) is answered; one of ours (odd) is its answer.
		if f.Word&1 == 0 {
			return c.write(wirespdy.AppendPing(nil, f.Word))
		}
	case spdy.TypeGoAway:
		return errGoAway
	}
	return nil // SETTINGS and WINDOW_UPDATE: spdystream ignores them too
}

// refuse resets a stream the kubelet opened; a failed write ends the reading.
func (h handler) refuse(id spdy.StreamId) error {
	return h.c.write(wirespdy.AppendRstStream(nil, id, spdy.RefusedStream))
}

func (h handler) Data(id spdy.StreamId, p []byte) {
	if s := h.c.stream(id); s != nil {
		if err := s.deliver(p); err != nil {
			h.c.abort(err)
		}
	}
}

func (h handler) DataEnd(id spdy.StreamId, fin bool) {
	if s := h.c.stream(id); s != nil && fin && s.remoteEnded() {
		h.c.remove(s)
	}
}
