package proxy

import (
	"testing"

	"github.com/exec-proxy/exec-proxy/pkg/proxy/clientconn"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/internal/proxytest"
)

// Frames are written directly only where they are v5.channel.k8s.io's, and without a bandwidth limit
// (whose queue the frames go through).
func TestDirectConn(t *testing.T) {
	cases := []struct {
		name     string
		protocol string
		limited  bool
		want     bool
	}{
		{"v5", "v5.channel.k8s.io", false, true},
		{"another protocol", "v4.channel.k8s.io", false, false},
		{"bandwidth limited", "v5.channel.k8s.io", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var limit int64
			if tc.limited {
				limit = 1 << 20
			}
			s := testSession(t, Identity{}, limit)
			// WebSocket, as the translator's clients are: not coalesced.
			c := clientconn.NewConn(&proxytest.SizesConn{}, clientSide{s}, clientconn.Options{In: s.traffic.in, Out: s.traffic.out})
			t.Cleanup(func() { _ = c.Close() })
			s.attach(c)
			s.answer.protocol = tc.protocol
			if got := s.directConn() != nil; got != tc.want {
				t.Errorf("direct: %t, want %t", got, tc.want)
			}
		})
	}
}
