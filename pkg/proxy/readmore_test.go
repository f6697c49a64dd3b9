package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"
)

func TestReadMore(t *testing.T) {
	cases := []struct {
		name    string
		records []string // written by the client as records of their own, arriving together
		close   bool     // the client's close_notify arrives with them
		bufLen  int
		reads   []string // what each sessionConn-style read returns
		lastErr error    // of the read after those
	}{
		{"a SPDY frame header and its data are read at once", []string{"abcd", "efgh", "data"}, false, 1024, []string{"abcdefghdata"}, nil},
		{"a full buffer is not read further", []string{"abcd", "efgh", "data"}, false, 6, []string{"abcdef", "ghdata"}, nil},
		{"a lone record is returned without waiting", []string{"abcd"}, false, 1024, []string{"abcd"}, nil},
		{"an EOF behind the data is the next read's", []string{"abcd", "efgh"}, true, 1024, []string{"abcdefgh"}, io.EOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			server, client := tlsPair(t)
			for _, r := range tc.records {
				if _, err := client.tls.Write([]byte(r)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.close {
				if err := client.tls.CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
			client.flush(t) // one TCP write: the server's first read receives every record

			for i, want := range tc.reads {
				p := make([]byte, tc.bufLen)
				n, err := readWithin(t, server, p)
				if err != nil || string(p[:n]) != want {
					t.Fatalf("read %d: %q, %v; want %q", i, p[:n], err, want)
				}
			}
			if tc.lastErr != nil {
				if _, err := readWithin(t, server, make([]byte, tc.bufLen)); !errors.Is(err, tc.lastErr) {
					t.Fatalf("last read: %v, want %v", err, tc.lastErr)
				}
				return
			}
			// The deadline readMore set is gone: a later read waits for later bytes.
			if _, err := client.tls.Write([]byte("later")); err != nil {
				t.Fatal(err)
			}
			client.flush(t)
			p := make([]byte, tc.bufLen)
			if n, err := readWithin(t, server, p); err != nil || string(p[:n]) != "later" {
				t.Fatalf("later read: %q, %v", p[:n], err)
			}
		})
	}
}

// readWithin reads as sessionConn.Read does, and fails the test instead of hanging.
func readWithin(t *testing.T, c net.Conn, p []byte) (int, error) {
	t.Helper()
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := c.Read(p)
		if err == nil {
			n = readMore(c, p, n)
		}
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		return r.n, r.err
	case <-time.After(10 * time.Second):
		_ = c.Close()
		t.Fatal("read hung")
		return 0, nil
	}
}

// batchedClient is a TLS client whose records, after the handshake, reach the network only on
// flush, in one write.
type batchedClient struct {
	tls *tls.Conn
	raw *batchConn
}

func (b *batchedClient) flush(t *testing.T) {
	t.Helper()
	if err := b.raw.flush(); err != nil {
		t.Fatal(err)
	}
}

type batchConn struct {
	net.Conn
	mu      sync.Mutex
	holding bool
	held    bytes.Buffer
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holding {
		return c.held.Write(p)
	}
	return c.Conn.Write(p)
}

func (c *batchConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// tls.Conn.CloseWrite leaves a write deadline of now behind, for its own write only.
	if err := c.Conn.SetWriteDeadline(time.Time{}); err != nil {
		return err
	}
	_, err := c.Conn.Write(c.held.Bytes())
	c.held.Reset()
	return err
}

// tlsPair is a TLS connection over loopback TCP, handshake done; the client's records, from then
// on, reach the network only on flush.
func tlsPair(t *testing.T) (*tls.Conn, *batchedClient) {
	t.Helper()
	bc := &batchConn{}
	server, client := handshakenPair(t, func(raw net.Conn) net.Conn { bc.Conn = raw; return bc })
	bc.mu.Lock()
	bc.holding = true
	bc.mu.Unlock()
	return server, &batchedClient{tls: client, raw: bc}
}

// handshakenPair is a TLS connection over loopback TCP, handshake done; the client's TLS runs over
// what wrap makes of its TCP connection.
func handshakenPair(t *testing.T, wrap func(net.Conn) net.Conn) (server, client *tls.Conn) {
	t.Helper()
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("localhost", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = tls.Server(<-accepted, &tls.Config{Certificates: []tls.Certificate{cert}})
	client = tls.Client(wrap(raw), &tls.Config{InsecureSkipVerify: true}) // a test's own pair
	t.Cleanup(func() { _ = server.Close(); _ = raw.Close() })
	errs := make(chan error, 1)
	go func() { errs <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	return server, client
}
