package proxy

import (
	"fmt"
	"testing"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// A throttled session still delivers all its output: the kubelet sends it all at once and closes,
// exec-proxy holds it for the client (see outQueue) and closes only once it has passed.
func TestThrottledSessionDeliversEverything(t *testing.T) {
	checkLeaks(t)
	kubelet := newFakeKubelet(t)
	p := newTestProxier(t, kubelet.caFile, Limits{MaxBytesPerSecSession: 256 << 10}, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t)))
	for _, protocol := range []string{"spdy", "websocket"} {
		t.Run(protocol, func(t *testing.T) {
			srv, records := frontWithRecords(t, p)
			const lines = 512 // 512 KiB: about two seconds at the limit
			out, err := execVia(t, srv, protocol, "alice", execCase{command: []string{"stream", fmt.Sprint(lines)}})
			if err != nil || len(out) != lines*1024 {
				t.Errorf("exec: %v; %d bytes of %d arrived", err, len(out), lines*1024)
			}
			if rec := <-records; rec.ExitCode != "0" || rec.Reason != session.ReasonExited || rec.BytesOut < lines*1024 {
				t.Errorf("record: exit %q, reason %q, %d bytes out", rec.ExitCode, rec.Reason, rec.BytesOut)
			}
		})
	}
}
