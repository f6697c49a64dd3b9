package proxy

import (
	"time"

	"github.com/exec-proxy/exec-proxy/pkg/proxy/caps"
)

// Limits are the throttles on sessions. Zero means unlimited.
type Limits struct {
	SessionStartQPS       float64
	SessionStartBurst     int
	MaxSessions           int
	MaxSessionsPerUser    int
	MaxSessionsPerNode    int
	MaxBytesPerSecSession int64
	IdleTimeout           time.Duration
	MaxSessionDuration    time.Duration
}

// caps are the limits a session is admitted under; the rest apply once it runs.
func (l Limits) caps() caps.Caps {
	return caps.Caps{SessionStartQPS: l.SessionStartQPS, SessionStartBurst: l.SessionStartBurst,
		MaxSessions: l.MaxSessions, MaxSessionsPerUser: l.MaxSessionsPerUser, MaxSessionsPerNode: l.MaxSessionsPerNode}
}
