package app

import (
	"os"
	"runtime/debug"
	"strconv"

	"k8s.io/klog/v2"
)

// defaultGCPercent is exec-proxy's garbage collection target when GOGC is not set. A session's
// setup (two TLS handshakes with hybrid post-quantum key exchange, authorization, the audit record)
// leaves about 200 KiB of garbage, while an idle session keeps about 30 KiB live. At Go's default
// of 100 the heap grows to twice what is live between collections, and the memory the runtime
// keeps from it puts 5,000 idle sessions at about 67 KiB each; at 50, about 55 KiB (make bench).
// The cost is CPU where exec-proxy allocates for every frame, which is upstream's stream
// translator (WebSocket) and recording: about 10% more of exec-proxy's CPU per GiB there.
const defaultGCPercent = 50

// setGCPercent applies defaultGCPercent unless the environment sets GOGC, which the runtime has
// applied already, and tells the target in effect.
func setGCPercent(getenv func(string) string, set func(int) int) (percent string, source string) {
	if v := getenv("GOGC"); v != "" {
		return v, "GOGC"
	}
	set(defaultGCPercent)
	return strconv.Itoa(defaultGCPercent), "default"
}

func logGCPercent(logger klog.Logger) {
	percent, source := setGCPercent(os.Getenv, debug.SetGCPercent)
	logger.Info("Garbage collection target", "percent", percent, "source", source)
}
