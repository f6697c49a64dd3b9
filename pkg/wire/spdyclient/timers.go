package spdyclient

import (
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// timers are a connection's PINGs and idle timeout, as timers rather than goroutines (client-go's
// sendPings and spdystream's idle monitor each keep one for the connection's life).
type timers struct {
	mu      sync.Mutex
	ping    *time.Timer
	period  time.Duration
	idle    *time.Timer
	timeout time.Duration
	stopped bool
}

// start writes a PING every period (none when zero).
func (t *timers) start(c *Conn, period time.Duration) {
	if period <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.period = period
	t.ping = time.AfterFunc(period, func() {
		if err := c.ping(); err != nil {
			klog.V(3).InfoS("SPDY Ping failed", "err", err) // client-go's words
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.stopped {
			t.ping.Reset(t.period)
		}
	})
}

// setIdle closes c after timeout without a frame either way (zero: never).
func (t *timers) setIdle(c *Conn, timeout time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.timeout = timeout
	if t.idle != nil {
		t.idle.Stop()
		t.idle = nil
	}
	if timeout > 0 {
		t.idle = time.AfterFunc(timeout, func() {
			klog.V(3).InfoS("Closing an idle SPDY connection", "timeout", timeout)
			_ = c.Close()
		})
	}
}

// active restarts the idle timeout: a frame was read or written.
func (t *timers) active() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.idle != nil && !t.stopped {
		t.idle.Reset(t.timeout)
	}
}

// stop stops both for good.
func (t *timers) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	if t.ping != nil {
		t.ping.Stop()
	}
	if t.idle != nil {
		t.idle.Stop()
	}
}
