package options

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/exec-proxy/exec-proxy/pkg/proxy"
)

// LimitOptions are the session throttles. Zero means unlimited.
type LimitOptions struct {
	proxy.Limits
}

func NewLimitOptions() *LimitOptions {
	return &LimitOptions{proxy.Limits{
		SessionStartQPS: 5, SessionStartBurst: 20,
		MaxSessions: 2000, MaxSessionsPerUser: 50, MaxSessionsPerNode: 500,
		IdleTimeout: 4 * time.Hour,
	}}
}

func (o *LimitOptions) AddFlags(fs *pflag.FlagSet) {
	fs.Float64Var(&o.SessionStartQPS, "session-start-qps", o.SessionStartQPS, "Sessions a user may start per second on this replica, sustained (0: unlimited).")
	fs.IntVar(&o.SessionStartBurst, "session-start-burst", o.SessionStartBurst, "Sessions a user may start at once on this replica above --session-start-qps.")
	fs.IntVar(&o.MaxSessions, "max-sessions", o.MaxSessions, "Concurrent sessions, of all replicas with --peer-namespace (0: unlimited).")
	fs.IntVar(&o.MaxSessionsPerUser, "max-sessions-per-user", o.MaxSessionsPerUser, "Concurrent sessions of one user, on all replicas with --peer-namespace (0: unlimited).")
	fs.IntVar(&o.MaxSessionsPerNode, "max-sessions-per-node", o.MaxSessionsPerNode, "Concurrent sessions to one node, on this replica (0: unlimited).")
	fs.Int64Var(&o.MaxBytesPerSecSession, "max-bytes-per-sec-per-session", o.MaxBytesPerSecSession, "Bandwidth of a session in each direction, bytes per second (0: unlimited).")
	fs.DurationVar(&o.IdleTimeout, "session-idle-timeout", o.IdleTimeout, "End a session with no traffic for this long (0: never).")
	fs.DurationVar(&o.MaxSessionDuration, "max-session-duration", o.MaxSessionDuration, "End a session after this long (0: never).")
}

func (o *LimitOptions) Validate() []error {
	var errs []error
	if o.SessionStartQPS < 0 || o.SessionStartBurst < 0 || o.MaxSessions < 0 || o.MaxSessionsPerUser < 0 ||
		o.MaxSessionsPerNode < 0 || o.MaxBytesPerSecSession < 0 || o.IdleTimeout < 0 || o.MaxSessionDuration < 0 {
		errs = append(errs, fmt.Errorf("session limits must not be negative"))
	}
	if o.SessionStartQPS > 0 && o.SessionStartBurst < 1 {
		errs = append(errs, fmt.Errorf("--session-start-burst must be at least 1 when --session-start-qps is set"))
	}
	return errs
}

func (o *LimitOptions) ToLimits() proxy.Limits { return o.Limits }
