package tlsrelay

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"

	"github.com/exec-proxy/exec-proxy/bench/internal/selfsigned"
)

// Arg is the first argument that makes the bench binary the relay (see Main).
const Arg = "-tls-relay"

// Config is what the relay process reads on its stdin.
type Config struct {
	Upstream string `json:"upstream"` // host:port of the kubelet
	// PEM files: the CA that signed the kubelet's serving certificate, and the client certificate
	// and key the relay presents to it.
	CAFile   string `json:"caFile"`
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
	// The relay's own serving certificate and key, PEM.
	ServingCert []byte `json:"servingCert"`
	ServingKey  []byte `json:"servingKey"`
}

// Process is a started relay.
type Process struct {
	Addr string // host:port it listens on
	Pid  int
	// CA is the relay's serving certificate, PEM: the only one a client should trust there.
	CA  []byte
	cmd *exec.Cmd
}

// Start runs command (the bench binary with Arg) as the relay to upstream, listening on a loopback
// port that Start opens and hands it, with a throwaway certificate made here.
func Start(command []string, upstream, caFile, certFile, keyFile string) (*Process, error) {
	certPEM, keyPEM, err := selfsigned.PEM("bench tls relay")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close() // the child holds its own copy
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cfg, err := json.Marshal(Config{Upstream: upstream, CAFile: caFile, CertFile: certFile, KeyFile: keyFile, ServingCert: certPEM, ServingKey: keyPEM})
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(command[0], command[1:]...)
	cmd.ExtraFiles = []*os.File{lf} // fd 3
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the TLS relay: %w", err)
	}
	p := &Process{Addr: ln.Addr().String(), Pid: cmd.Process.Pid, CA: certPEM, cmd: cmd}
	if _, err := stdin.Write(cfg); err != nil {
		p.Stop()
		return nil, fmt.Errorf("configuring the TLS relay: %w", err)
	}
	stdin.Close()
	// The relay says "ready" once it has read its configuration and serves.
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		p.Stop()
		return nil, fmt.Errorf("the TLS relay did not start (%q): %w", line, err)
	}
	return p, nil
}

// Stop ends the relay and waits for it.
func (p *Process) Stop() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// Main is the relay process: its configuration on stdin, its listener on fd 3, "ready" on stdout
// once it serves. It serves until it is killed.
func Main(stdin io.Reader, stdout io.Writer) error {
	var c Config
	if err := json.NewDecoder(stdin).Decode(&c); err != nil {
		return fmt.Errorf("reading the configuration: %w", err)
	}
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		return fmt.Errorf("the listener on fd 3: %w", err)
	}
	r, err := New(c)
	if err != nil {
		return err
	}
	r.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "tls relay: "+format+"\n", args...) }
	fmt.Fprintln(stdout, "ready")
	return r.Serve(ln)
}

// New is the relay that c describes.
func New(c Config) (*Relay, error) {
	serving, err := tls.X509KeyPair(c.ServingCert, c.ServingKey)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	client, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return nil, errors.New("no certificate in " + c.CAFile)
	}
	upstream := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{client}}
	return &Relay{
		Server: &tls.Config{Certificates: []tls.Certificate{serving}},
		Dial:   func() (*tls.Conn, error) { return tls.Dial("tcp", c.Upstream, upstream) },
	}, nil
}
