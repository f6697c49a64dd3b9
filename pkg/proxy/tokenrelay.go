package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	upgradeproxy "k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
)

// tokenRelay carries the stream translator's SPDY connection to a kubelet when exec-proxy
// authenticates with a bearer token. The translator writes its own request to the kubelet and
// cannot add a header, so it dials this in-process relay instead (over a pipe, never a socket):
// the relay adds the token and forwards the upgrade over the verifying kubelet transport.
type tokenRelay struct {
	kubelets *nodeconn.Transport
	// transport is what the translator is given: its dialer is the relay.
	transport *http.Transport
}

func newTokenRelay(kubelets *nodeconn.Transport) *tokenRelay {
	r := &tokenRelay{kubelets: kubelets}
	r.transport = &http.Transport{DialContext: r.dial}
	return r
}

// location is loc as the translator must dial it: plain HTTP, since the relay does the TLS.
func (r *tokenRelay) location(loc *url.URL) *url.URL {
	relayed := *loc
	relayed.Scheme = "http"
	return &relayed
}

func (r *tokenRelay) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, relay := net.Pipe()
	go r.serve(ctx, relay)
	return client, nil
}

// serve reads the translator's request, authorizes it and splices it to the kubelet until either
// side closes. Closing both connections on return ends the other copy.
func (r *tokenRelay) serve(ctx context.Context, conn net.Conn) {
	defer conn.Close()
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
	backend, err := upgradeproxy.DialURL(ctx, req.URL, r.kubelets.Transport)
	if err != nil {
		badGateway(conn, fmt.Errorf("error dialing backend: %w", err))
		return
	}
	defer backend.Close()
	if err := req.Write(backend); err != nil {
		klog.FromContext(ctx).V(2).Info("Writing the relayed request to the kubelet failed", "err", err)
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(backend, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, backend); done <- struct{}{} }()
	<-done
}

func badGateway(conn net.Conn, err error) {
	msg := err.Error()
	_, _ = fmt.Fprintf(conn, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
}
