package wire_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
	"github.com/exec-proxy/exec-proxy/pkg/wire/wiretest"
)

func TestReadMore(t *testing.T) {
	cases := []struct {
		name    string
		records []string // written by the client as records of their own, arriving together
		close   bool     // the client's close_notify arrives with them
		bufLen  int
		reads   []string // what each clientconn.Conn-style read returns
		lastErr error    // of the read after those
	}{
		{"a SPDY frame header and its data are read at once", []string{"abcd", "efgh", "data"}, false, 1024, []string{"abcdefghdata"}, nil},
		{"a full buffer is not read further", []string{"abcd", "efgh", "data"}, false, 6, []string{"abcdef", "ghdata"}, nil},
		{"a lone record is returned without waiting", []string{"abcd"}, false, 1024, []string{"abcd"}, nil},
		{"an EOF behind the data is the next read's", []string{"abcd", "efgh"}, true, 1024, []string{"abcdefgh"}, io.EOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			server, client := wiretest.TLSPair(t)
			for _, r := range tc.records {
				if _, err := client.TLS.Write([]byte(r)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.close {
				if err := client.TLS.CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
			client.Flush(t) // one TCP write: the server's first read receives every record

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
			// The deadline ReadMore set is gone: a later read waits for later bytes.
			if _, err := client.TLS.Write([]byte("later")); err != nil {
				t.Fatal(err)
			}
			client.Flush(t)
			p := make([]byte, tc.bufLen)
			if n, err := readWithin(t, server, p); err != nil || string(p[:n]) != "later" {
				t.Fatalf("later read: %q, %v", p[:n], err)
			}
		})
	}
}

// readWithin reads as clientconn.Conn.Read does, and fails the test instead of hanging.
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
			n = wire.ReadMore(c, p, n)
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
