package proxy

import (
	"context"

	"github.com/exec-proxy/exec-proxy/pkg/proxy/clientconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/kubeletconn"
	"github.com/exec-proxy/exec-proxy/pkg/wire"
)

// clientSide is the session as its client connection sees it. It keeps these methods off
// Session's exported ones, which the registry and the peers see.
type clientSide struct{ s *Session }

var _ clientconn.Session = clientSide{}

func (c clientSide) Context() context.Context        { return c.s.ctx }
func (c clientSide) Cancel()                         { c.s.cancel() }
func (c clientSide) CountIn(n int)                   { c.s.countIn(n) }
func (c clientSide) CountOut(n int)                  { c.s.countOut(n) }
func (c clientSide) FrameReader() wire.FrameReader   { return c.s.frameReader() }
func (c clientSide) ProtocolError() bool             { return c.s.protocolError() }
func (c clientSide) ExitStatusTold() bool            { return c.s.exitStatusTold() }
func (c clientSide) ClientClosed()                   { c.s.clientClosed() }
func (c clientSide) Refused(code int)                { c.s.refused(code) }
func (c clientSide) KubeletRefusal(raw []byte) error { return c.s.kubeletRefusal(raw) }
func (c clientSide) Attach(conn *clientconn.Conn)    { c.s.attach(conn) }

func (c clientSide) Answered(head []byte) (int, bool, error) { return c.s.answered(head) }

// kubeletSide is the session as the translator's connection to the kubelet sees it.
type kubeletSide struct{ s *Session }

var _ kubeletconn.Client = kubeletSide{}

func (k kubeletSide) DirectConn() *clientconn.Conn       { return k.s.directConn() }
func (k kubeletSide) StdinRoute() *clientconn.StdinRoute { return k.s.stdinRoute() }
func (k kubeletSide) Translated() kubeletconn.Tally      { return k.s.translatedStats() }
