package setup

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/exec-proxy/exec-proxy/bench/internal/selfsigned"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Receiver is the bench's audit webhook: it answers 200 to each audit.k8s.io/v1 EventList posted to
// it and counts the events, so that the report shows the webhook was on; anything else is refused
// (and counted) as exec-proxy's webhook backend would be by a strict receiver.
type Receiver struct {
	events, batches, refused atomic.Int64
}

// maxBatchBytes bounds a batch read: exec-proxy sends at most 100 events a batch.
const maxBatchBytes = 16 << 20

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		r.refused.Add(1)
		http.Error(w, "POST an audit.k8s.io/v1 EventList", http.StatusMethodNotAllowed)
		return
	}
	var list auditv1.EventList
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxBatchBytes)).Decode(&list); err != nil {
		r.refused.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if list.APIVersion != auditv1.SchemeGroupVersion.String() || list.Kind != "EventList" {
		r.refused.Add(1)
		http.Error(w, fmt.Sprintf("want an audit.k8s.io/v1 EventList, not %s %s", list.APIVersion, list.Kind), http.StatusBadRequest)
		return
	}
	r.events.Add(int64(len(list.Items)))
	r.batches.Add(1)
}

// Events is how many audit events have been received.
func (r *Receiver) Events() int64 { return r.events.Load() }

// Refused is how many posts were not an EventList.
func (r *Receiver) Refused() int64 { return r.refused.Load() }

// Webhook is a Receiver served over TLS on loopback, with a throwaway certificate, and the
// kubeconfig that points exec-proxy's --session-audit-webhook-config-file at it.
type Webhook struct {
	*Receiver
	URL        string
	Kubeconfig string // the file
	srv        *http.Server
	served     chan struct{}
}

// Server timeouts: a batch is small, and exec-proxy keeps its connection between batches.
const (
	readTimeout = 30 * time.Second
	idleTimeout = 2 * time.Minute
)

// ServeWebhook serves a Receiver on 127.0.0.1 and writes its kubeconfig into dir, whose path must
// have no white space: hack/cluster/exec-proxy.sh splits EXEC_PROXY_EXTRA_ARGS at it.
func ServeWebhook(dir string) (*Webhook, error) {
	kubeconfig := filepath.Join(dir, "audit-webhook.kubeconfig")
	if strings.ContainsAny(kubeconfig, " \t\n") {
		return nil, fmt.Errorf("audit webhook kubeconfig %q: a path with white space cannot be passed in EXEC_PROXY_EXTRA_ARGS", kubeconfig)
	}
	cert, caPEM, err := selfSigned()
	if err != nil {
		return nil, fmt.Errorf("audit webhook certificate: %w", err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, fmt.Errorf("audit webhook: %w", err)
	}
	w := &Webhook{Receiver: &Receiver{}, URL: "https://" + l.Addr().String() + "/audit", Kubeconfig: kubeconfig, served: make(chan struct{})}
	if err := writeKubeconfig(kubeconfig, w.URL, caPEM); err != nil {
		l.Close()
		return nil, err
	}
	w.srv = &http.Server{Handler: w.Receiver, ReadHeaderTimeout: readTimeout, ReadTimeout: readTimeout, WriteTimeout: readTimeout, IdleTimeout: idleTimeout}
	go func() {
		defer close(w.served)
		_ = w.srv.Serve(l)
	}()
	return w, nil
}

// Close stops serving, waiting up to 5 s for posts under way, and returns once the server's
// goroutine has.
func (w *Webhook) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := w.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, w.srv.Close())
	}
	<-w.served
	return err
}

// writeKubeconfig writes a webhook kubeconfig (kube-apiserver's --audit-webhook-config-file format)
// naming server, trusted by caPEM, with no client credentials.
func writeKubeconfig(file, server string, caPEM []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["bench-audit-webhook"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["exec-proxy"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["bench-audit-webhook"] = &clientcmdapi.Context{Cluster: "bench-audit-webhook", AuthInfo: "exec-proxy"}
	cfg.CurrentContext = "bench-audit-webhook"
	if err := clientcmd.WriteToFile(*cfg, file); err != nil {
		return fmt.Errorf("audit webhook kubeconfig: %w", err)
	}
	return nil
}

// selfSigned is a throwaway certificate for 127.0.0.1 that is its own CA, and its PEM.
func selfSigned() (tls.Certificate, []byte, error) {
	certPEM, keyPEM, err := selfsigned.PEM("bench audit webhook")
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	return cert, certPEM, err
}
