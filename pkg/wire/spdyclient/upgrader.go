package spdyclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"k8s.io/streaming/pkg/httpstream"
)

// Upgrader is the round tripper and upgrader (an httpstream.UpgradeRoundTripper, which client-go's
// transport/spdy NewUpgraderForStreaming makes its Upgrader) that
// remotecommand.NewSPDYExecutorForTransports takes, for one connection: RoundTrip dials with Dial
// and writes the upgrade request, NewConnection makes the Conn. With NewUpgraderForStreaming,
// client-go's remotecommand gets the Conn's streams themselves, not wrapped, so that its io.Copy
// calls use their WriteTo and ReadFrom. Adapted from k8s.io/streaming's
// httpstream/spdy SpdyRoundTripper (Copyright 2015 The Kubernetes Authors, Apache License 2.0).
type Upgrader struct {
	Dial       func(ctx context.Context, network, address string) (net.Conn, error)
	PingPeriod time.Duration

	conn net.Conn
	resp *bufio.Reader // what read the response
}

// headerSpdy31 is the Upgrade header's value (k8s.io/streaming's HeaderSpdy31).
const headerSpdy31 = "SPDY/3.1"

// RoundTrip writes req as an upgrade to SPDY/3.1 and reads the answer.
func (u *Upgrader) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Add(httpstream.HeaderConnection, httpstream.HeaderUpgrade)
	req.Header.Add(httpstream.HeaderUpgrade, headerSpdy31)
	conn, err := u.Dial(req.Context(), "tcp", canonicalAddr(req))
	if err != nil {
		return nil, fmt.Errorf("dialing the kubelet: %w", err)
	}
	if err := req.Write(conn); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("writing the upgrade request: %w", err)
	}
	u.resp = bufio.NewReaderSize(conn, 512) // let go once the answer is read
	resp, err := http.ReadResponse(u.resp, nil)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("reading the upgrade's answer: %w", err)
	}
	u.conn = conn
	return resp, nil
}

// NewConnection checks the answer as SpdyRoundTripper's does, and starts the connection.
func (u *Upgrader) NewConnection(resp *http.Response) (httpstream.Connection, error) {
	connection := strings.ToLower(resp.Header.Get(httpstream.HeaderConnection))
	upgrade := strings.ToLower(resp.Header.Get(httpstream.HeaderUpgrade))
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.Contains(connection, strings.ToLower(httpstream.HeaderUpgrade)) ||
		!strings.Contains(upgrade, strings.ToLower(headerSpdy31)) {
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("unable to upgrade connection: unable to read error from server response")
		}
		return nil, fmt.Errorf("unable to upgrade connection: %s", upgradeErrorMessage(body))
	}
	var in io.Reader = u.conn
	if n := u.resp.Buffered(); n > 0 { // the kubelet's first frames came with its answer
		ahead, _ := u.resp.Peek(n)
		in = io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), u.conn)
	}
	u.resp = nil
	return NewConn(u.conn, in, u.PingPeriod), nil
}

// upgradeErrorMessage is SpdyRoundTripper's: a Status's message, or the body as text.
func upgradeErrorMessage(body []byte) string {
	var status struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if err := json.Unmarshal(body, &status); err == nil {
		if msg := strings.TrimSpace(status.Message); msg != "" {
			return msg
		}
		if msg := strings.TrimSpace(status.Error); msg != "" {
			return msg
		}
	}
	if msg := strings.TrimSpace(string(body)); msg != "" {
		return msg
	}
	return "empty server response"
}

// canonicalAddr is the request URL's host and port, the scheme's port if none.
func canonicalAddr(req *http.Request) string {
	port := req.URL.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(req.URL.Scheme, "https") || strings.EqualFold(req.URL.Scheme, "wss") {
			port = "443"
		}
	}
	return net.JoinHostPort(req.URL.Hostname(), port)
}
