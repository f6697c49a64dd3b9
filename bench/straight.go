package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

const execProxyURL = "https://127.0.0.1:18443"

// demoPort is what the demo pod's main container serves (busybox httpd, hack/cluster/manifests/pods.yaml).
const demoPort = 8080

// adminStraight is admin's client certificate against exec-proxy itself: kube-apiserver, which
// holds a priority-and-fairness seat per aggregated request, is left out of the count.
func adminStraight(cluster string) *rest.Config {
	pki := filepath.Join(cluster, "pki")
	return &rest.Config{Host: execProxyURL, QPS: -1, TLSClientConfig: rest.TLSClientConfig{
		CAFile: filepath.Join(pki, "ca.crt"), CertFile: filepath.Join(pki, "user-admin.crt"), KeyFile: filepath.Join(pki, "user-admin.key"),
	}}
}

// straightGet reads path from exec-proxy itself as admin.
func straightGet(cfg *rest.Config, path string, timeout time.Duration) ([]byte, error) {
	ca, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(cfg.Host + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, body)
	}
	return body, err
}

// saveProfile writes exec-proxy's pprof profile (e.g. "heap", "profile?seconds=10") to file.
func saveProfile(cfg *rest.Config, profile, file string, timeout time.Duration) error {
	body, err := straightGet(cfg, "/debug/pprof/"+profile, timeout)
	if err != nil {
		return fmt.Errorf("profile %s: %w", profile, err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	if strings.HasSuffix(file, ".txt") {
		logf("profile: %s (text)", file)
	} else {
		logf("profile: %s (go tool pprof -top %s)", file, file)
	}
	return os.WriteFile(file, body, 0o644)
}
