// Package tlsrelay is the bench's bare TLS relay: the physical limit of one proxy hop. It
// terminates TLS from the client, dials the kubelet with TLS for each connection, and copies bytes
// both ways with io.Copy, nothing else. It runs as a process of its own (the bench binary started
// again with Arg), so that its CPU is read apart from the client's, which runs in the bench.
package tlsrelay

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
)

// Relay accepts TLS connections and relays each to a connection Dial opens.
type Relay struct {
	Server *tls.Config
	// Dial opens the upstream connection for one accepted connection.
	Dial func() (*tls.Conn, error)
	// Logf tells of connections that could not be relayed; nil: not told.
	Logf func(format string, args ...any)
}

// Serve relays every connection ln accepts until ln is closed.
func (r *Relay) Serve(ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.relay(tls.Server(c, r.Server))
		}()
	}
}

func (r *Relay) relay(client *tls.Conn) {
	defer client.Close()
	if err := client.Handshake(); err != nil {
		r.logf("handshake with the client: %v", err)
		return
	}
	upstream, err := r.Dial()
	if err != nil {
		r.logf("dialing upstream: %v", err)
		return
	}
	defer upstream.Close()
	Pipe(client, upstream)
}

// Pipe copies a to b and b to a until both ends have finished. An end that finishes its side
// (EOF) is passed on as a half-close, so that a client may end stdin and still read the output;
// an end that fails closes both.
func Pipe(a, b *tls.Conn) {
	done := make(chan struct{}, 2)
	copyOne := func(dst, src *tls.Conn) {
		if _, err := io.Copy(dst, src); err != nil {
			a.Close()
			b.Close()
		} else {
			_ = dst.CloseWrite()
		}
		done <- struct{}{}
	}
	go copyOne(b, a)
	go copyOne(a, b)
	<-done
	<-done
}

func (r *Relay) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}
