package tlsrecord

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/exec-proxy/exec-proxy/pkg/wire/wiretest"
)

func TestWriteRecordsInOneWrite(t *testing.T) {
	cases := []struct {
		name     string
		under    bool // a Conn is under the TLS connection
		size     int
		oneWrite bool // on the TCP connection
	}{
		{"a 40 KiB write: three records or more, one system call", true, 40 << 10, true},
		{"a small write: one record, one system call", true, 100, true},
		{"without a Conn: a system call per record", false, 40 << 10, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server, counted := recordPair(t, tc.under)
			p := bytes.Repeat([]byte("x"), tc.size)
			got := make(chan []byte, 1)
			go func() {
				b := make([]byte, tc.size)
				_, _ = io.ReadFull(server, b)
				got <- b
			}()
			before := counted.count()
			if n, err := Write(client, p); n != len(p) || err != nil {
				t.Fatalf("Write: %d, %v", n, err)
			}
			if writes := counted.count() - before; (writes == 1) != tc.oneWrite {
				t.Errorf("%d writes on the TCP connection; want one: %v", writes, tc.oneWrite)
			}
			if b := <-got; !bytes.Equal(b, p) {
				t.Error("the peer read other bytes than were written")
			}
		})
	}
}

// TestWriteRecordsFailureSticks: records the TLS connection counts as sent were lost, so nothing
// may follow them, as crypto/tls has it for its own failed writes.
func TestWriteRecordsFailureSticks(t *testing.T) {
	client, _, counted := recordPair(t, true)
	counted.fail(errors.New("broken pipe"))
	if n, err := Write(client, []byte("lost")); n != 0 || err == nil {
		t.Fatalf("Write on a broken connection: %d, %v; want 0 and the error", n, err)
	}
	counted.fail(nil) // the connection would take bytes again: the TLS stream cannot
	if _, err := client.Write([]byte("after")); err == nil {
		t.Error("a write after lost records succeeded")
	}
	if _, err := Write(client, []byte("after")); err == nil {
		t.Error("Write after lost records succeeded")
	}
}

// TestWriteRecordsConcurrentWriter: another goroutine's write to the TLS connection (an alert, a
// close) during a Write goes out in order with its records.
func TestWriteRecordsConcurrentWriter(t *testing.T) {
	client, server, _ := recordPair(t, true)
	const writers, size = 8, 20 << 10
	var wg sync.WaitGroup
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := bytes.Repeat([]byte{byte('a' + i)}, size)
			if i%2 == 0 {
				_, _ = Write(client, p)
			} else {
				_, _ = client.Write(p)
			}
		}()
	}
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, writers*size)
		_, err := io.ReadFull(server, b)
		if err != nil {
			t.Errorf("read: %v", err)
		}
		got <- b
	}()
	wg.Wait()
	b := <-got
	seen := map[byte]int{}
	for _, c := range b {
		seen[c]++
	}
	for i := 0; i < writers; i++ {
		if seen[byte('a'+i)] != size {
			t.Errorf("writer %d: %d bytes arrived, want %d", i, seen[byte('a'+i)], size)
		}
	}
}

// recordPair is a TLS connection over loopback TCP whose client side writes through a countingConn,
// with a Conn over it if under is set.
func recordPair(t *testing.T, under bool) (client *tls.Conn, server *tls.Conn, counted *countingConn) {
	t.Helper()
	server, client = wiretest.HandshakenPair(t, func(raw net.Conn) net.Conn {
		counted = &countingConn{Conn: raw}
		if under {
			return &Conn{Conn: counted}
		}
		return counted
	})
	return client, server, counted
}

// countingConn counts its writes, and fails them while told to.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
	err    error
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *countingConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

func (c *countingConn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}
