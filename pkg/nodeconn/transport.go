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
	utilnet "k8s.io/apimachinery/pkg/util/net"
	upgradeproxy "k8s.io/apimachinery/pkg/util/proxy"
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
	tokenFile  string
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
		t.token, t.tokenFile = transport.NewCachedFileTokenSource(cfg.TokenFile), cfg.TokenFile
		// Read once now: an unreadable token fails the start, not a session. Once read, the source
		// keeps the last token it read when a rotation cannot be read.
		if _, err := t.token.Token(); err != nil {
			return nil, fmt.Errorf("kubelet token file: %w", err)
		}
	}
	setCredentialMetric(t.credential())
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

// credential names what exec-proxy presents to kubelets, for the metric and the start log.
func (t *Transport) credential() string {
	switch {
	case t.token != nil:
		return credentialToken
	case t.clientCert != nil:
		return credentialClientCertificate
	}
	return credentialNone
}

// Authorize sets the bearer token on a request to a kubelet, if exec-proxy uses one. It is for
// requests written below anything that logs them (the translator's connection to the kubelet); the upgrade-aware
// proxy goes through UpgradeTransport.
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

// UpgradeTransport is the upgrade-aware proxy's UpgradeTransport: it dials with connection and
// adds exec-proxy's bearer token to a copy of the request as it is dialed (DialForUpgrade). The
// request the upgrade-aware proxy logs (its headers, from -v=6, which /debug/flags/v can turn on
// at run time) is the one without it, as with kube-apiserver's own kubelet credentials.
func (t *Transport) UpgradeTransport(connection http.RoundTripper) upgradeproxy.UpgradeRequestRoundTripper {
	return upgradeproxy.NewUpgradeRequestRoundTripper(connection, credentials{t})
}

// credentials "round-trips" a request by returning a copy of it with the bearer token set: the
// upgrade-aware proxy writes that copy to the connection and keeps nothing of it.
type credentials struct{ t *Transport }

func (c credentials) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.t.token != nil {
		req = utilnet.CloneRequest(req)
		if err := c.t.Authorize(req.Header); err != nil {
			return nil, err
		}
	}
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
}

// Run watches the client certificate files until ctx ends. It says which credential kubelets
// get, and warns when it is a bearer token.
func (t *Transport) Run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	if t.token != nil {
		// A kubelet sees the token itself, where it sees only a certificate of a client certificate.
		logger.Info("WARNING: exec-proxy authenticates to kubelets with a bearer token: root on any node it "+
			"reaches can replay it to every kubelet, to exec into any pod past exec-proxy and its audit; "+
			"use --kubelet-client-certificate and --kubelet-client-key (see docs/kubelet-credential.md)",
			"kubeletTokenFile", t.tokenFile, "metric", "execproxy_kubelet_credential{type=\"token\"}")
	}
	if t.clientCert == nil {
		return
	}
	go t.clientCert.Run(ctx, 1)
	logger.V(2).Info("Watching kubelet client certificate for rotation")
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
