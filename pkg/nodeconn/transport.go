package nodeconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/transport"
	"k8s.io/klog/v2"
)

// TransportConfig is how exec-proxy authenticates the kubelet and itself to the kubelet.
type TransportConfig struct {
	// CAFile verifies the kubelet's serving certificate. Required unless InsecureSkipTLSVerify.
	CAFile                string
	InsecureSkipTLSVerify bool
	// ClientCertFile and ClientKeyFile are exec-proxy's identity at the kubelet; re-read on change.
	ClientCertFile string
	ClientKeyFile  string
	// TokenFile holds a bearer token (a service account token) presented when there is no client
	// certificate; read again as it is rotated.
	TokenFile   string
	DialTimeout time.Duration
}

// Transport carries sessions to kubelets. Its TLS config is what the upgrade-aware proxy and the
// stream translator dial with, so verification holds on every path.
type Transport struct {
	*http.Transport
	// Insecure is true when the kubelet's certificate is not verified.
	Insecure   bool
	clientCert dynamiccertificates.ControllerRunner
	token      oauth2.TokenSource
	configs    hostConfigs
	sessions   *sessionCache
}

// NewTransport builds the kubelet transport. It starts nothing: call Run for certificate reloads.
func NewTransport(cfg TransportConfig) (*Transport, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case cfg.InsecureSkipTLSVerify:
		tlsConfig.InsecureSkipVerify = true
	case cfg.CAFile == "":
		return nil, errors.New("a kubelet certificate authority is required to verify kubelets")
	default:
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading kubelet certificate authority: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no PEM certificate found in kubelet certificate authority %s", cfg.CAFile)
		}
		tlsConfig.RootCAs = pool
	}
	t := &Transport{Insecure: cfg.InsecureSkipTLSVerify, sessions: newSessionCache()}
	tlsConfig.ClientSessionCache = t.sessions
	if cfg.ClientCertFile != "" {
		content, err := dynamiccertificates.NewDynamicServingContentFromFiles("kubelet-client-certificate", cfg.ClientCertFile, cfg.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading kubelet client certificate: %w", err)
		}
		t.clientCert = content
		tlsConfig.GetClientCertificate = (&reloadingCert{content: content}).get
		// A resumed session keeps the identity it was made with: a new certificate starts anew.
		content.AddListener(t.sessions)
	}
	if cfg.TokenFile != "" {
		if _, err := os.Stat(cfg.TokenFile); err != nil {
			return nil, fmt.Errorf("kubelet token file: %w", err)
		}
		t.token = transport.NewCachedFileTokenSource(cfg.TokenFile)
	}
	timeout := cfg.DialTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	t.Transport = &http.Transport{
		TLSClientConfig:     tlsConfig,
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: timeout,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	return t, nil
}

// UsesToken is true when requests to kubelets carry a bearer token (see Authorize).
func (t *Transport) UsesToken() bool { return t.token != nil }

// Authorize sets the bearer token on a request to a kubelet, if exec-proxy uses one.
func (t *Transport) Authorize(h http.Header) error {
	if t.token == nil {
		return nil
	}
	tok, err := t.token.Token()
	if err != nil {
		return fmt.Errorf("reading the kubelet token: %w", err)
	}
	h.Set("Authorization", "Bearer "+tok.AccessToken)
	return nil
}

// Run watches the client certificate files until ctx ends.
func (t *Transport) Run(ctx context.Context) {
	if t.clientCert == nil {
		return
	}
	go t.clientCert.Run(ctx, 1)
	klog.FromContext(ctx).V(2).Info("Watching kubelet client certificate for rotation")
}

// reloadingCert parses the client certificate again only when its files changed.
type reloadingCert struct {
	content dynamiccertificates.CertKeyContentProvider
	mu      sync.Mutex
	raw     []byte
	cert    *tls.Certificate
}

func (r *reloadingCert) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	certPEM, keyPEM := r.content.CurrentCertKeyContent()
	r.mu.Lock()
	defer r.mu.Unlock()
	raw := append(append([]byte{}, certPEM...), keyPEM...)
	if r.cert != nil && bytes.Equal(raw, r.raw) {
		return r.cert, nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("parsing kubelet client certificate: %w", err)
	}
	r.raw, r.cert = raw, &cert
	return r.cert, nil
}
