package idle

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// Usable is how many held sessions still reached the pod: each one's port-forward carried an HTTP
// request to the pod's port and its answer back.
type Usable struct {
	Checked    int     `json:"checked"`
	Usable     int     `json:"usable"`
	Seconds    float64 `json:"seconds"`
	FirstError string  `json:"firstError,omitempty"`
}

// share is usable ÷ asked: a session never opened counts as unusable.
func (u Usable) share(asked int) float64 {
	if asked == 0 {
		return 0
	}
	return float64(u.Usable) / float64(asked)
}

// dialTimeout opens one port-forward connection to u as cfg, or gives up after timeout; a
// connection that arrives later is closed.
func dialTimeout(cfg *rest.Config, u *url.URL, timeout time.Duration) (httpstream.Connection, error) {
	type result struct {
		conn httpstream.Connection
		err  error
	}
	done := make(chan result, 1)
	go func() {
		rt, upgrader, err := spdy.RoundTripperFor(cfg)
		if err != nil {
			done <- result{err: err}
			return
		}
		conn, _, err := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u).Dial(portforward.PortForwardProtocolV1Name)
		done <- result{conn, err}
	}()
	select {
	case r := <-done:
		return r.conn, r.err
	case <-time.After(timeout):
		go func() {
			if r := <-done; r.conn != nil {
				_ = r.conn.Close()
			}
		}()
		return nil, fmt.Errorf("port-forward: no connection in %s", timeout)
	}
}

// probeAll asks each connection for the pod's port, conc at a time, each given timeout; after
// budget, those not yet asked are left unchecked (and count as unusable): a path that times every
// probe out would otherwise take hours over 10,000 sessions.
func probeAll(conns []httpstream.Connection, port, conc int, timeout, budget time.Duration) Usable {
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var u Usable
	sem := make(chan struct{}, conc)
	for _, c := range conns {
		sem <- struct{}{}
		if time.Since(start) > budget {
			<-sem
			mu.Lock()
			if u.FirstError == "" {
				u.FirstError = fmt.Sprintf("%d sessions left unchecked after %s", len(conns)-u.Checked, budget)
			}
			mu.Unlock()
			break
		}
		u.Checked++
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := probe(c, port, timeout)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				u.Usable++
			} else if u.FirstError == "" {
				u.FirstError = err.Error()
			}
		}()
	}
	wg.Wait()
	u.Seconds = time.Since(start).Seconds()
	return u
}

// probe forwards one connection to port on the held session, as kubectl port-forward does (an
// error stream and a data stream of one request id), sends an HTTP/1.0 GET and reads the status
// line: a 200 has come from the pod through the whole path.
func probe(conn httpstream.Connection, port int, timeout time.Duration) error {
	done := make(chan error, 1)
	var streams []httpstream.Stream
	var mu sync.Mutex
	go func() {
		h := http.Header{}
		h.Set(v1.StreamType, v1.StreamTypeError)
		h.Set(v1.PortHeader, strconv.Itoa(port))
		h.Set(v1.PortForwardRequestIDHeader, "0")
		errStream, err := conn.CreateStream(h)
		if err != nil {
			done <- fmt.Errorf("error stream: %w", err)
			return
		}
		_ = errStream.Close() // nothing is written to it
		mu.Lock()
		streams = append(streams, errStream)
		mu.Unlock()
		errs := make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(io.LimitReader(errStream, 4096))
			errs <- string(b)
		}()
		h.Set(v1.StreamType, v1.StreamTypeData)
		data, err := conn.CreateStream(h)
		if err != nil {
			done <- fmt.Errorf("data stream: %w", err)
			return
		}
		mu.Lock()
		streams = append(streams, data)
		mu.Unlock()
		if _, err := io.WriteString(data, "GET / HTTP/1.0\r\n\r\n"); err != nil {
			done <- fmt.Errorf("data stream: %w", err)
			return
		}
		line, err := bufio.NewReader(data).ReadString('\n')
		switch {
		case err != nil && line == "":
			select {
			case msg := <-errs:
				err = fmt.Errorf("%w (error stream: %q)", err, msg)
			case <-time.After(time.Second):
			}
			done <- fmt.Errorf("data stream: %w", err)
		case !strings.HasPrefix(line, "HTTP/1.") || !strings.Contains(line, " 200"):
			done <- fmt.Errorf("the pod answered %q", strings.TrimSpace(line))
		default:
			done <- nil
		}
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(timeout):
		err = fmt.Errorf("no answer from the pod in %s", timeout)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range streams {
		_ = s.Reset()
	}
	conn.RemoveStreams(streams...)
	return err
}
