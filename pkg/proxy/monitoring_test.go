package proxy

import (
	"os"
	"testing"
)

// TestMain registers the metrics before any test runs, as exec-proxy does before it serves: an
// unregistered metric drops what is counted, and registering one while a session of an earlier
// test still updates it is a data race.
func TestMain(m *testing.M) {
	RegisterMetrics()
	os.Exit(m.Run())
}
