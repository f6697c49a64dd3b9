package proxy

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	upgradeproxy "k8s.io/apimachinery/pkg/util/proxy"
	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	translator "k8s.io/apiserver/pkg/util/proxy"
	v1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	kubeletrc "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream/wsstream"
	utilexec "k8s.io/utils/exec"

	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
)

// fakeKubelet serves the kubelet's streaming routes with the kubelet's own protocol code
// (k8s.io/kubelet's remotecommand and portforward servers) over TLS. Its "container" runs a few
// commands: "cat" echoes stdin, "echo ARGS" prints, "exit N" fails with code N, "size" prints the
// first terminal size, "flood KIB" writes far ahead of a slow reader (tail_linux_test.go).
type fakeKubelet struct {
	*httptest.Server
	caFile string
	header atomic.Pointer[http.Header] // the last request's
	open   atomic.Int64                // connections not closed yet
	// closedTCP hears of each connection the kubelet closed (its TCP socket, after the TLS);
	// flooded of what each "flood" wrote.
	closedTCP chan struct{}
	flooded   chan []byte
}

type fakeKubeletKey struct{}

// kubeletSocket is a connection the fake kubelet accepted: its closes are told on closedTCP.
type kubeletSocket struct {
	*net.TCPConn
	k *fakeKubelet
}

func (c *kubeletSocket) Close() error {
	err := c.TCPConn.Close()
	select {
	case c.k.closedTCP <- struct{}{}:
	default:
	}
	return err
}

type kubeletListener struct {
	net.Listener
	k *fakeKubelet
}

func (l kubeletListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &kubeletSocket{TCPConn: c.(*net.TCPConn), k: l.k}, nil
}

func newFakeKubelet(t *testing.T) *fakeKubelet { return newFakeKubeletWith(t, fakeKubeletOptions{}) }

// newFakeKubeletWithToken answers 401, as a kubelet with webhook authentication does, unless the
// request carries the bearer token (when token is not empty).
func newFakeKubeletWithToken(t *testing.T, token string) *fakeKubelet {
	return newFakeKubeletWith(t, fakeKubeletOptions{token: token})
}

type fakeKubeletOptions struct {
	token string
	// webSockets: as a 1.36 kubelet (ExtendWebSocketsToKubelet), it translates WebSocket v5 exec and
	// untunnels port-forward over WebSocket itself, in front of its runtime's streaming server.
	webSockets bool
}

func newFakeKubeletWith(t *testing.T, o fakeKubeletOptions) *fakeKubelet {
	t.Helper()
	token := o.token
	mux := http.NewServeMux()
	mux.HandleFunc("/exec/{ns}/{pod}/{container}", func(w http.ResponseWriter, req *http.Request) {
		if req.PathValue("container") == "gone" { // as a kubelet that does not know the pod yet
			http.Error(w, "pod does not exist", http.StatusInternalServerError)
			return
		}
		opts, err := kubeletrc.NewOptions(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		kubeletrc.ServeExec(w, req, fakeContainer{}, req.PathValue("pod"), "", req.PathValue("container"),
			req.URL.Query()["command"], opts, time.Minute, 30*time.Second, remotecommandconsts.SupportedStreamingProtocols)
	})
	mux.HandleFunc("/portForward/{ns}/{pod}", func(w http.ResponseWriter, req *http.Request) {
		opts, err := portforward.NewV4Options(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		portforward.ServePortForward(w, req, fakeContainer{}, req.PathValue("pod"), "", opts, time.Minute, 30*time.Second, portforward.SupportedProtocols)
	})
	k := &fakeKubelet{closedTCP: make(chan struct{}, 16), flooded: make(chan []byte, 16)}
	served := http.Handler(mux)
	if o.webSockets {
		served = webSocketKubelet(t, mux)
	}
	handler := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := req.Header.Clone()
		k.header.Store(&h)
		served.ServeHTTP(w, req)
	}))
	if token != "" {
		recorded := handler
		handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Header.Get("Authorization") != "Bearer "+token {
				http.Error(w, "Unauthorized", http.StatusUnauthorized)
				return
			}
			recorded.ServeHTTP(w, req)
		})
	}
	srv := httptest.NewUnstartedServer(handler)
	srv.EnableHTTP2 = false
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		switch state {
		case http.StateNew:
			k.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			k.open.Add(-1)
		}
	}
	srv.Listener = kubeletListener{Listener: srv.Listener, k: k}
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, fakeKubeletKey{}, c)
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	k.Server, k.caFile = srv, writeCA(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	return k
}

func writeCA(t *testing.T, certPEM []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(f, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (k *fakeKubelet) port(t *testing.T) int32 {
	_, port, _ := net.SplitHostPort(k.Listener.Addr().String())
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return int32(p)
}

type fakeContainer struct{}

func (fakeContainer) ExecInContainer(ctx context.Context, _, _, _ string, cmd []string, in io.Reader, out, _ io.WriteCloser, _ bool, resize <-chan kubeletrc.TerminalSize, _ time.Duration) error {
	switch cmd[0] {
	case "cat":
		_, err := io.Copy(out, in)
		return err
	case "count": // wc -c
		n, err := io.Copy(io.Discard, in)
		if err == nil {
			_, err = fmt.Fprintln(out, n)
		}
		return err
	case "echo":
		_, err := fmt.Fprintln(out, strings.Join(cmd[1:], " "))
		return err
	case "exit":
		code, _ := strconv.Atoi(cmd[1])
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	case "stream": // stream N: N lines of 1 KiB
		n, _ := strconv.Atoi(cmd[1])
		line := strings.Repeat("x", 1023) + "\n"
		for i := 0; i < n; i++ {
			if _, err := io.WriteString(out, line); err != nil {
				return err
			}
		}
		return nil
	case "flood": // flood KIB: see there
		kib, _ := strconv.Atoi(cmd[1])
		return flood(ctx, out, kib)
	case "size":
		size := <-resize
		_, err := fmt.Fprintf(out, "%d %d\n", size.Height, size.Width)
		return err
	}
	return fmt.Errorf("unknown command %q", cmd[0])
}

// PortForward echoes what it reads, prefixed with the port.
func (fakeContainer) PortForward(_ context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	data, err := io.ReadAll(stream)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stream, "%d:%s", port, data)
	return err
}

// cluster is the informer view: a pod "p" in "ns" with containers a and b on node "n1" whose
// kubelet is the fake; more objects can be added.
func newResolver(t *testing.T, objs ...interface{}) *nodeconn.Resolver {
	t.Helper()
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	nodes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *corev1.Pod:
			err = pods.Add(o)
		case *corev1.Node:
			err = nodes.Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return &nodeconn.Resolver{Pods: v1.NewPodLister(pods), Nodes: v1.NewNodeLister(nodes),
		PreferredAddressTypes: nodeconn.DefaultPreferredAddressTypes, DefaultPort: 10250}
}

func runningPod(name, node string, containers ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
	}
	return p
}

func nodeAt(name, ip string, port int32) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: port}},
	}}
}

// webSocketKubelet is the 1.36 kubelet's server (k8s.io/kubernetes pkg/kubelet/server getExec,
// getPortForward): WebSocket v5 is translated, and port-forward over WebSocket untunnelled, to the
// runtime's streaming server, here runtime served over plain HTTP as containerd's is.
func webSocketKubelet(t *testing.T, runtime http.Handler) http.Handler {
	t.Helper()
	cri := httptest.NewServer(runtime)
	t.Cleanup(cri.Close)
	criURL := func(req *http.Request) *url.URL {
		u, _ := url.Parse(cri.URL + req.URL.RequestURI())
		return u
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case strings.HasPrefix(req.URL.Path, "/exec/") && wsstream.IsWebSocketRequestWithStreamCloseProtocol(req):
			opts, err := kubeletrc.NewOptions(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			translator.NewStreamTranslatorHandler(criURL(req), nil, 0,
				translator.Options{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, Tty: opts.TTY}).ServeHTTP(w, req)
		case strings.HasPrefix(req.URL.Path, "/portForward/") && wsstream.IsWebSocketRequestWithTunnelingProtocol(req):
			uah := upgradeproxy.NewUpgradeAwareHandler(criURL(req), nil, false, true, kubeletResponder{})
			translator.NewTunnelingHandler(uah).ServeHTTP(w, req)
		default:
			runtime.ServeHTTP(w, req)
		}
	})
}

type kubeletResponder struct{}

func (kubeletResponder) Error(w http.ResponseWriter, _ *http.Request, err error) {
	http.Error(w, err.Error(), http.StatusInternalServerError)
}
