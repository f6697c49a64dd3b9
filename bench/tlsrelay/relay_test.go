package tlsrelay

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/exec-proxy/exec-proxy/bench/internal/selfsigned"
)

// TestMain makes the test binary the relay process when Start runs it again (TestProcess).
func TestMain(m *testing.M) {
	if os.Getenv("TLSRELAY_TEST_CHILD") == "1" {
		if err := Main(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// pki is a kubelet-like upstream's certificates, in files as the cluster keeps them.
type pki struct {
	dir                                string
	serving, client                    tls.Certificate
	caFile, clientCertFile, clientKey  string
	servingPEM, servingKeyPEM, clientP []byte
}

func newPKI(t *testing.T) pki {
	t.Helper()
	p := pki{dir: t.TempDir()}
	var err error
	p.servingPEM, p.servingKeyPEM, err = selfsigned.PEM("bench tls relay")
	if err != nil {
		t.Fatal(err)
	}
	if p.serving, err = tls.X509KeyPair(p.servingPEM, p.servingKeyPEM); err != nil {
		t.Fatal(err)
	}
	cert, key, err := selfsigned.PEM("client") // a self-signed client certificate, which upstream trusts
	if err != nil {
		t.Fatal(err)
	}
	if p.client, err = tls.X509KeyPair(cert, key); err != nil {
		t.Fatal(err)
	}
	p.clientP = cert
	p.caFile, p.clientCertFile, p.clientKey = filepath.Join(p.dir, "ca.crt"), filepath.Join(p.dir, "client.crt"), filepath.Join(p.dir, "client.key")
	for f, b := range map[string][]byte{p.caFile: p.servingPEM, p.clientCertFile: cert, p.clientKey: key} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func pool(t *testing.T, certPEM []byte) *x509.CertPool {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

// upstream serves like an exec's kubelet end: it writes down bytes while it reads what the client
// sends until the client's half-close, then writes the SHA-256 of what it read and closes.
func upstream(t *testing.T, p pki, down int) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{p.serving},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool(t, p.clientP)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				wrote := make(chan error, 1)
				go func() { _, err := c.Write(pattern(down)); wrote <- err }()
				h := sha256.New()
				if _, err := io.Copy(h, c); err != nil {
					return
				}
				if <-wrote != nil {
					return
				}
				_, _ = c.Write(h.Sum(nil))
			}()
		}
	}()
	return ln.Addr().String()
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// exchange sends up bytes through the relay at addr, half-closes, and reads to the end.
func exchange(t *testing.T, addr string, ca []byte, up int) []byte {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool(t, ca)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sent := make(chan error, 1)
	go func() {
		_, err := c.Write(pattern(up)[:up:up])
		if err == nil {
			err = c.CloseWrite()
		}
		sent <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading through the relay: %v", err)
	}
	if err := <-sent; err != nil {
		t.Fatalf("writing through the relay: %v", err)
	}
	return got
}

func check(t *testing.T, got []byte, up, down int) {
	t.Helper()
	sum := sha256.Sum256(pattern(up))
	want := append(pattern(down), sum[:]...)
	if !bytes.Equal(got, want) {
		t.Errorf("got %d bytes back, want %d bytes of output and the hash of the %d sent", len(got), down, up)
	}
}

var sizes = []struct {
	name     string
	up, down int
}{
	{"nothing either way", 0, 0},
	{"one byte each way", 1, 1},
	{"download only", 0, 3<<20 + 5},
	{"upload only", 3<<20 + 5, 0},
	{"both ways at once", 1<<20 + 3, 2<<20 + 1},
}

// Bytes pass through unchanged both ways, and the client's half-close reaches upstream (which
// answers only then) while the client still reads.
func TestRelay(t *testing.T) {
	p := newPKI(t)
	for _, s := range sizes {
		t.Run(s.name, func(t *testing.T) {
			r, err := New(Config{Upstream: upstream(t, p, s.down), CAFile: p.caFile, CertFile: p.clientCertFile, KeyFile: p.clientKey,
				ServingCert: p.servingPEM, ServingKey: p.servingKeyPEM})
			if err != nil {
				t.Fatal(err)
			}
			r.Logf = t.Logf
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- r.Serve(ln) }()
			for i := 0; i < 2; i++ { // a connection each, one after the other
				check(t, exchange(t, ln.Addr().String(), p.servingPEM, s.up), s.up, s.down)
			}
			ln.Close()
			if err := <-served; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
}

// An upstream that refuses the relay's client certificate ends the client's connection.
func TestRelayUpstreamRefuses(t *testing.T) {
	p, other := newPKI(t), newPKI(t)
	r, err := New(Config{Upstream: upstream(t, p, 10), CAFile: p.caFile, CertFile: other.clientCertFile, KeyFile: other.clientKey,
		ServingCert: p.servingPEM, ServingKey: p.servingKeyPEM})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go r.Serve(ln)
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool(t, p.servingPEM)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, _ := io.ReadAll(c); len(got) > 10+sha256.Size {
		t.Errorf("read %d bytes from an upstream that refused the relay", len(got))
	}
}

// The relay as the bench runs it: a process of its own, started on a listener handed to it.
func TestProcess(t *testing.T) {
	p := newPKI(t)
	t.Setenv("TLSRELAY_TEST_CHILD", "1")
	proc, err := Start([]string{os.Args[0]}, upstream(t, p, 1<<20), p.caFile, p.clientCertFile, p.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Stop()
	if proc.Pid <= 0 || proc.Pid == os.Getpid() {
		t.Errorf("relay pid %d, the test's %d", proc.Pid, os.Getpid())
	}
	check(t, exchange(t, proc.Addr, proc.CA, 1<<20), 1<<20, 1<<20)
}
