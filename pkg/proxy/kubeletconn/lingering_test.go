package kubeletconn

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestLingeringConn(t *testing.T) {
	cases := []struct {
		name  string
		armed bool
		end   func(dc *lingeringConn) // what lets a failed write return
	}{
		{"armed: after reading ended", true, func(dc *lingeringConn) { _, _ = dc.Read(make([]byte, 1)) }},
		{"armed: after close", true, func(dc *lingeringConn) { _ = dc.Close() }},
		{"not armed: at once", false, nil},
		{"with a write deadline (TLS close_notify): at once", true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ours, peer := net.Pipe()
			dc := newLingeringConn(ours)
			defer dc.Close()
			if tc.armed {
				dc.arm()
			}
			_ = peer.Close() // the kubelet is gone
			done := make(chan error, 1)
			if strings.HasPrefix(tc.name, "with a write deadline") {
				_ = dc.SetWriteDeadline(time.Now().Add(time.Minute))
			}
			go func() { _, err := dc.Write([]byte("window update")); done <- err }()
			if tc.end != nil {
				select {
				case err := <-done:
					t.Fatalf("the write error (%v) came back while the other direction could still read", err)
				case <-time.After(50 * time.Millisecond):
				}
				tc.end(dc)
			}
			if err := <-done; err == nil {
				t.Error("a write to a closed peer succeeded")
			}
		})
	}
}

// TestLingeringConnTimeoutIsNoEnd: a read that times out (wire.ReadMore's past deadline) leaves reading
// going; only a real end (EOF) lets a failed write return.
func TestLingeringConnTimeoutIsNoEnd(t *testing.T) {
	ours, peer := net.Pipe()
	dc := newLingeringConn(ours)
	defer dc.Close()
	_ = dc.SetReadDeadline(time.Unix(1, 0)) // already past, as wire.ReadMore sets it
	if _, err := dc.Read(make([]byte, 1)); err == nil {
		t.Fatal("a read past its deadline succeeded")
	}
	select {
	case <-dc.readDone:
		t.Fatal("a timed-out read ended the reading")
	default:
	}
	_ = dc.SetReadDeadline(time.Time{})
	_ = peer.Close()
	_, _ = dc.Read(make([]byte, 1))
	select {
	case <-dc.readDone:
	default:
		t.Error("EOF did not end the reading")
	}
}
