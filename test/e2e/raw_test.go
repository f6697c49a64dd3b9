//go:build e2e

package e2e

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

const (
	apiServer = "https://127.0.0.1:16443"
	kubeRoute = api.RoutePrefix
)

// upgrade is one raw upgrade request, as kubectl sends it, so status codes can be asserted exactly.
type upgrade struct {
	name, method string
	headers      map[string]string
}

var (
	spdyUpgrade = upgrade{"SPDY", http.MethodPost, map[string]string{
		"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "v4.channel.k8s.io"}}
	wsUpgrade = upgrade{"WebSocket", http.MethodGet, map[string]string{
		"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "v5.channel.k8s.io"}}
)

// status is the part of a Kubernetes Status the tests look at.
type status struct {
	Kind    string `json:"kind"`
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// rawRequest sends an upgrade as user (client certificate) to kube-apiserver's URL path; returns the
// HTTP code and, for failures, the decoded Status.
func rawRequest(t *testing.T, user string, up upgrade, path string) (int, status) {
	t.Helper()
	code, st, _ := rawResponse(t, user, up, path)
	return code, st
}

// rawResponse is rawRequest with the response headers.
func rawResponse(t *testing.T, user string, up upgrade, path string) (int, status, http.Header) {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: userTLS(t, user),
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{}, // upgrades need HTTP/1.1
	}}
	req, err := http.NewRequest(up.method, apiServer+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range up.headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", up.method, path, err)
	}
	defer resp.Body.Close()
	var st status
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(body, &st); err != nil || st.Kind != "Status" {
			t.Errorf("%s %s: %d with a body that is not a Status: %q", up.method, path, resp.StatusCode, body)
		}
	}
	return resp.StatusCode, st, resp.Header
}

// TestForgedRequestHeaders: exec-proxy trusts X-Remote-User only from kube-apiserver's front-proxy
// client certificate. Sent straight to exec-proxy without it, the request is anonymous and refused.
func TestForgedRequestHeaders(t *testing.T) {
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: userTLS(t, "")}}
	for _, path := range []string{kubeRoute + "/api/v1/namespaces/demo/pods/demo", "/apis/execproxy.dev/v1alpha1/namespaces/demo/pods/demo/exec?command=true&stdout=true"} {
		req, _ := http.NewRequest(http.MethodPost, "https://127.0.0.1:18443"+path, nil)
		req.Header.Set("X-Remote-User", "admin")
		req.Header.Set("X-Remote-Group", "system:masters")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `User \"system:anonymous\"`) {
			t.Errorf("%s: got %d %s, want 403 for system:anonymous", path, resp.StatusCode, body)
		}
	}
}
