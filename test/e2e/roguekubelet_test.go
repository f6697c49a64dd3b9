//go:build e2e

package e2e

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/exec-proxy/exec-proxy/internal/testcert"
)

const reliabilityNamespace = "e2e-reliability"

// rogueKubelet is a TLS server at a node's address that is not a kubelet: a rogue one, or one that
// answers upgrades wrongly. It counts what exec-proxy sends it.
type rogueKubelet struct {
	ln net.Listener
	// answer writes the response to one request; nil for a rogue that never answers.
	answer func(w io.Writer, req *http.Request)

	accepted, handshakes atomic.Int64
	appBytes             atomic.Int64 // bytes read after a completed handshake
	requests             atomic.Int64
	reused               atomic.Int64 // requests after the first on one connection
	trapHits             atomic.Int64 // requests for the redirect target
	leftOpen             atomic.Int64 // connections exec-proxy did not close after an answer
	closed               atomic.Int64
	wg                   sync.WaitGroup
}

// startRogueKubelet listens on ip with a certificate for certIP signed by signer (a fresh,
// unrelated CA when signer is nil).
func startRogueKubelet(t *testing.T, ip, certIP string, signer *testcert.CA, answer func(io.Writer, *http.Request)) *rogueKubelet {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	if signer == nil {
		signer = testcert.NewCA(t, "rogue-ca")
	}
	k := &rogueKubelet{ln: ln, answer: answer}
	cfg := &tls.Config{Certificates: []tls.Certificate{leafCert(t, signer, certIP)}, NextProtos: []string{"http/1.1"}}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			k.accepted.Add(1)
			k.wg.Add(1)
			go func() { defer k.wg.Done(); k.serve(tls.Server(c, cfg)) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); k.wg.Wait() })
	return k
}

func (k *rogueKubelet) port() int { return k.ln.Addr().(*net.TCPAddr).Port }

func (k *rogueKubelet) closedConns() int64 { return k.closed.Load() }

func (k *rogueKubelet) serve(c *tls.Conn) {
	defer k.closed.Add(1)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := c.Handshake(); err != nil {
		return
	}
	k.handshakes.Add(1)
	r := bufio.NewReader(countingReader{c, &k.appBytes})
	for n := 0; ; n++ {
		req, err := http.ReadRequest(r)
		if err != nil {
			if n > 0 && !errors.Is(err, io.EOF) && !isClosed(err) {
				k.leftOpen.Add(1) // the deadline passed with the connection still open
			}
			return
		}
		k.requests.Add(1)
		if n > 0 {
			k.reused.Add(1)
		}
		if strings.HasPrefix(req.URL.Path, "/trap") {
			k.trapHits.Add(1)
		}
		if k.answer == nil {
			return
		}
		k.answer(c, req)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	}
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "connection reset")
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// clusterCA is the CA that signs the cluster's kubelet serving certificates.
func clusterCA(t *testing.T) *testcert.CA {
	t.Helper()
	pki := filepath.Join(clusterDir(), "pki")
	return testcert.LoadCA(t, filepath.Join(pki, "ca.crt"), filepath.Join(pki, "ca.key"))
}

// leafCert is a serving certificate for ip signed by ca.
func leafCert(t *testing.T, ca *testcert.CA, ip string) tls.Certificate {
	t.Helper()
	return ca.Sign(t, testcert.Leaf{CommonName: "fake-kubelet", IPs: []net.IP{net.ParseIP(ip)}, DNSNames: []string{"fake-kubelet.invalid"}})
}

// fakeNode registers node at ip:port with a Running pod per name in pods, which no kubelet runs:
// exec-proxy will send their sessions to whatever listens there.
func fakeNode(t *testing.T, node, ip string, port int, pods ...string) {
	t.Helper()
	ensureNamespace(t, reliabilityNamespace)
	var m strings.Builder
	fmt.Fprintf(&m, "apiVersion: v1\nkind: Node\nmetadata: {name: %s}\n", node)
	for _, p := range pods {
		fmt.Fprintf(&m, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s}\nspec:\n  nodeName: %s\n"+
			"  automountServiceAccountToken: false\n  containers: [{name: main, image: registry.local/busybox:local, imagePullPolicy: Never}]\n",
			p, reliabilityNamespace, node)
	}
	admin(t, m.String(), "apply", "-f", "-")
	t.Cleanup(func() {
		admin(t, "", append([]string{"-n", reliabilityNamespace, "delete", "pods", "--force", "--grace-period=0", "--ignore-not-found"}, pods...)...)
		admin(t, "", "delete", "node", node, "--ignore-not-found")
	})
	admin(t, "", "patch", "node", node, "--subresource=status", "--type=merge", "-p",
		fmt.Sprintf(`{"status":{"addresses":[{"type":"InternalIP","address":%q}],"daemonEndpoints":{"kubeletEndpoint":{"Port":%d}}}}`, ip, port))
	for _, p := range pods {
		admin(t, "", "-n", reliabilityNamespace, "patch", "pod", p, "--subresource=status", "--type=merge", "-p", `{"status":{"phase":"Running"}}`)
	}
	// exec-proxy resolves from its informers: wait until it sends the last pod to its node.
	last := pods[len(pods)-1]
	eventually(t, 30*time.Second, "exec-proxy to see the pods on "+node, func() bool {
		code, st := routeRequest(t, "admin", spdyUpgrade, kubeRoute+"/api/v1/namespaces/"+reliabilityNamespace+"/pods/"+last+"/exec?command=true&stdout=true")
		// Until then it says the pod, or the node's address, is not there or not running.
		return code == http.StatusSwitchingProtocols || strings.Contains(st.Message, fmt.Sprintf("kubelet on node %q", node))
	})
}
