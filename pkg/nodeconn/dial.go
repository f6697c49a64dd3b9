package nodeconn

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// maxHostConfigs bounds the TLS configs and sessions kept, one per kubelet host: nodes come and go.
const maxHostConfigs = 1024

// sessionCache keeps a TLS session per kubelet to resume: a resumed handshake skips the kubelet's
// certificate (the connection does not hold it parsed again) and its verification, which the
// session had passed; before resuming, crypto/tls checks again that the certificate is unexpired,
// names the host and chains to the kubelet CA. Enqueue (the client certificate changed) forgets
// them all.
type sessionCache struct {
	cache atomic.Pointer[tls.ClientSessionCache]
}

func newSessionCache() *sessionCache {
	c := &sessionCache{}
	c.Enqueue()
	return c
}

func (c *sessionCache) Get(key string) (*tls.ClientSessionState, bool) {
	return (*c.cache.Load()).Get(key)
}
func (c *sessionCache) Put(key string, cs *tls.ClientSessionState) { (*c.cache.Load()).Put(key, cs) }

func (c *sessionCache) Enqueue() {
	lru := tls.NewLRUClientSessionCache(maxHostConfigs)
	c.cache.Store(&lru)
}

// hostConfigs holds the TLS config for each kubelet host. Every connection keeps its config for
// its whole life, so sessions to one kubelet share one instead of a clone each.
type hostConfigs struct {
	mu      sync.Mutex
	configs map[string]*tls.Config
}

func (h *hostConfigs) get(base *tls.Config, host string) *tls.Config {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cfg, ok := h.configs[host]; ok {
		return cfg
	}
	if h.configs == nil || len(h.configs) >= maxHostConfigs {
		h.configs = map[string]*tls.Config{}
	}
	cfg := base.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = host // the kubelet's certificate must name the address dialed
	}
	cfg.NextProtos = []string{"http/1.1"} // an upgrade is HTTP/1.1
	h.configs[host] = cfg
	return cfg
}

// DialKubelet dials the kubelet at address and completes the TLS handshake, verifying the
// kubelet's certificate (unless Insecure). wrap, when set, is given the TCP connection first, and
// the TLS runs over what it returns.
func (t *Transport) DialKubelet(ctx context.Context, address string, wrap func(net.Conn) net.Conn) (*tls.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("kubelet address %q: %w", address, err)
	}
	raw, err := t.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, fmt.Errorf("error dialing backend: %w", err)
	}
	if wrap != nil {
		raw = wrap(raw)
	}
	conn := tls.Client(raw, t.configs.get(t.TLSClientConfig, host))
	if t.TLSHandshakeTimeout > 0 { // a kubelet that accepts but never answers does not hold the session
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.TLSHandshakeTimeout)
		defer cancel()
	}
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("error dialing backend: %w", err)
	}
	return conn, nil
}
