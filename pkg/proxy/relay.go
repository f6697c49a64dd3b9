package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"

	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
)

// relay carries the stream translator's SPDY connection to the kubelet. The translator writes its
// own request to the kubelet, so it dials this in-process relay instead (over a pipe, never a
// socket), which
//   - adds exec-proxy's bearer token, when kubelets take one (the translator cannot add a header);
//   - reads the kubelet's frames: the translator reports a kubelet that vanished as a success
//     (an empty error stream), so the exit code of a WebSocket session is taken from this leg;
//   - forwards the upgrade over the verifying kubelet transport.
type relay struct {
	kubelets *nodeconn.Transport
	// transport is what the translator is given: its dialer is the relay.
	transport *http.Transport
}

func newRelay(kubelets *nodeconn.Transport) *relay {
	r := &relay{kubelets: kubelets}
	r.transport = &http.Transport{DialContext: r.dial}
	return r
}

type sessionKey struct{}

func withSession(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

func (r *relay) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, relayed := net.Pipe()
	s, _ := ctx.Value(sessionKey{}).(*Session)
	var leg *streamStats
	if s != nil {
		leg = s.addKubeletLeg()
	}
	go r.serve(ctx, relayed, leg, s)
	return client, nil
}

// serve reads the translator's request, authorizes it and forwards it to the kubelet. A refusal
// is passed back and both connections closed; an upgrade is spliced until either side closes or
// the session ends (stop). Closing both connections on return ends the other copy.
func (r *relay) serve(ctx context.Context, conn net.Conn, leg *streamStats, s *Session) {
	defer conn.Close()
	skim := skimmer(nopSkimmer{})
	if s != nil {
		skim = newSkimmer("SPDY/3.1", "", leg)
		defer s.legs.Done()
		defer skim.close()
		stop := context.AfterFunc(s.legCtx, func() { _ = conn.Close() })
		defer stop()
	}
	in := bufio.NewReader(conn)
	req, err := http.ReadRequest(in)
	if err != nil {
		return
	}
	req.URL.Scheme, req.URL.Host, req.RequestURI = "https", req.Host, ""
	if err := r.kubelets.Authorize(req.Header); err != nil {
		badGateway(conn, err)
		return
	}
	tlsConn, err := sessionKubelet(s, req.URL.Host)
	if err != nil {
		badGateway(conn, err)
		return
	}
	backend := newDrainingConn(tlsConn) // armed once upgraded: see drainingConn
	defer backend.Close()
	if s != nil {
		stop := context.AfterFunc(s.legCtx, func() { _ = backend.Close() })
		defer stop()
	}
	if err := req.Write(backend); err != nil {
		klog.FromContext(ctx).V(2).Info("Writing the relayed request to the kubelet failed", "err", err)
		return
	}
	out := bufio.NewReader(backend)
	resp, err := http.ReadResponse(out, req)
	if err != nil {
		badGateway(conn, fmt.Errorf("reading the kubelet's answer: %w", err))
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		if leg != nil {
			leg.unknown(fmt.Sprintf("the kubelet answered %s to the upgrade", resp.Status))
		}
		// As a Status, the translator passes it on to the client whole, code and message.
		node, address := "", req.URL.Host
		if s != nil {
			node, address = s.Node, s.Address
		}
		writeStatusResponse(conn, kubeletRefusal(node, address, resp))
		return
	}
	if err := resp.Write(conn); err != nil {
		return
	}
	backend.arm()
	done := make(chan struct{}, 2)
	go func() { _, _ = copyWholeFrames(skimWriter{backend, skim.fromClient}, in); done <- struct{}{} }()
	go func() { _, _ = copyAdaptive(skimWriter{conn, skim.toClient}, out); done <- struct{}{} }()
	<-done
}

// skimWriter shows what it writes to a skimmer first.
type skimWriter struct {
	w    io.Writer
	skim func([]byte)
}

func (w skimWriter) Write(p []byte) (int, error) {
	w.skim(p)
	return w.w.Write(p)
}

func badGateway(conn net.Conn, err error) { writeStatusResponse(conn, gatewayError(err.Error())) }
