// Package leaktest checks that a streaming test leaves no goroutine behind.
package leaktest

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Check fails t, at its end, if goroutines started during it are still running.
func Check(t testing.TB, ignore ...goleak.Option) {
	t.Helper()
	before := append(ignore, goleak.IgnoreCurrent())
	t.Cleanup(func() {
		// spdystream's shutdown may linger up to 1s after a close: give the goroutines 3s to end.
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if goleak.Find(before...) == nil {
				return
			}
		}
		goleak.VerifyNone(t, before...)
	})
}
