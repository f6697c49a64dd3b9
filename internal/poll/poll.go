// Package poll waits in unit tests for a condition another goroutine makes true.
package poll

import (
	"testing"
	"time"
)

// Until polls cond until it holds, failing t after 10 s: a hang, never a timing.
func Until(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
