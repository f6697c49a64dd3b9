package setup

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	httpstreamspdy "k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/exec-proxy/exec-proxy/bench/internal/execpath"
)

// A Path is one way to the demo pod's port-forward: a client configuration and the request's URL.
// Every path is opened by the same client code (open).
type Path struct {
	Name string
	Cfg  *rest.Config
	URL  string
}

const (
	// Port is where the demo pod's httpd listens (hack/cluster/manifests/pods.yaml): a forwarded
	// connection is answered by a running process, and none is started for the session.
	Port = 8080
	// request is what test/e2e's port-forward asks the demo pod's httpd; the answer's first bytes
	// end the timing (any status: its status line is the pod's answer).
	request = "GET / HTTP/1.0\r\n\r\n"
)

// kubeletPath is node1's kubelet's own portForward endpoint with kube-apiserver's kubelet client
// certificate: one TLS hop, no proxy.
func kubeletPath(cluster string) Path {
	host := "https://" + execpath.KubeletHost
	return Path{Name: Direct, Cfg: &rest.Config{Host: host, QPS: -1, TLSClientConfig: execpath.KubeletTLS(cluster)},
		URL: execpath.KubeletPortForwardURL(host)}
}

// apiPath is pods/portforward on cfg's server: kube-apiserver's own, or the route when cfg's
// server is the route's prefix.
func apiPath(name string, cfg *rest.Config) Path {
	return Path{Name: name, Cfg: cfg, URL: execpath.PortForwardURL(cfg.Host)}
}

// open times one port-forward session on p: from the request until the upgraded connection has
// its first stream pair (error and data, as client-go's PortForwarder opens for a connection) and
// the pod's answer to a request on it has arrived. The session is then closed, untimed.
//
// The client is client-go's SPDY upgrade (transport/spdy.Negotiate with the upgrade round tripper
// and the rest.Config's wrappers, what spdy.RoundTripperFor gives kubectl port-forward), with one
// difference kubectl does not have: the TCP connection is dialled here, so that it carries the
// session's deadline and no step (dial, TLS, the upgrade's answer, a stream's reply, a read) waits
// past timeout. Proxies from the environment are not used: every path is on loopback.
func open(ctx context.Context, p Path, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	tlsConfig, err := rest.TLSConfigFor(p.Cfg)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.Name, err)
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := c.SetDeadline(deadline); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	upgrader, err := httpstreamspdy.NewRoundTripperWithConfig(httpstreamspdy.RoundTripperConfig{
		PingPeriod: execpath.SPDYPingPeriod, UpgradeTransport: &http.Transport{DialContext: dial, TLSClientConfig: tlsConfig}})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.Name, err)
	}
	rt, err := rest.HTTPWrappersForConfig(p.Cfg, upgrader)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.Name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, nil)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.Name, err)
	}
	start := time.Now()
	conn, _, err := spdy.Negotiate(upgrader, &http.Client{Transport: rt}, req, portforward.PortForwardProtocolV1Name)
	if err != nil {
		return 0, fmt.Errorf("%s: port-forward upgrade: %w", p.Name, err)
	}
	defer conn.Close()
	// A stream's reply is waited for up to 30 s by the SPDY connection itself: closing the
	// connection at the deadline ends that wait too.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := answered(conn); err != nil {
		return 0, fmt.Errorf("%s: %w", p.Name, err)
	}
	return time.Since(start), nil
}

// answered opens the error and data streams of one forwarded connection to Port, sends request
// on the data stream and reads the answer's first bytes, which must be an HTTP status line's.
func answered(conn httpstream.Connection) error {
	h := http.Header{}
	h.Set(corev1.StreamType, corev1.StreamTypeError)
	h.Set(corev1.PortHeader, strconv.Itoa(Port))
	h.Set(corev1.PortForwardRequestIDHeader, "0")
	errStream, err := conn.CreateStream(h)
	if err != nil {
		return fmt.Errorf("error stream: %w", err)
	}
	errStream.Close() // nothing is written to it, as client-go's PortForwarder does
	h.Set(corev1.StreamType, corev1.StreamTypeData)
	data, err := conn.CreateStream(h)
	if err != nil {
		return fmt.Errorf("data stream: %w", err)
	}
	if _, err := io.WriteString(data, request); err != nil {
		return fmt.Errorf("data stream: %w", err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(data, got); err != nil || string(got) != "HTTP" {
		// The kubelet tells why on the error stream, then closes it.
		msg, _ := io.ReadAll(io.LimitReader(errStream, 4096))
		return fmt.Errorf("port %d answered %q (%v); error stream: %q", Port, got, err, msg)
	}
	return nil
}
