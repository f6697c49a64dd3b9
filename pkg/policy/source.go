package policy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// Source is the policy a file holds, read again when the file changes. A file that no longer
// parses leaves the last good policy in force, and says so in the log and the metrics: a typo
// while editing must not lift every rule.
type Source struct {
	path    string
	load    func(data []byte) (*Policy, error)
	current atomic.Pointer[Policy]
	data    []byte // what current was read from; only Run's goroutine touches it after NewSource
}

// NewSource reads the policy at path (with Parse, or load when given, for older formats); an
// invalid file is an error here, so exec-proxy does not start without the policy it was given.
func NewSource(path string, load func(data []byte) (*Policy, error)) (*Source, error) {
	if load == nil {
		load = Parse
	}
	s := &Source{path: path, load: load}
	if _, err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Current is the policy in force; nil on a nil Source, which decides nothing.
func (s *Source) Current() *Policy {
	if s == nil {
		return nil
	}
	return s.current.Load()
}

// Run reads the file every period until ctx ends. Polling, not inotify: a ConfigMap volume
// replaces the file through a symlink swap that watches on the file itself miss.
func (s *Source) Run(ctx context.Context, period time.Duration) {
	logger := klog.FromContext(ctx).WithValues("file", s.path)
	t := time.NewTicker(period)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := s.reload()
		switch {
		case err != nil && err.Error() != lastErr:
			// Once per new error, not every period: the metric says it goes on.
			logger.Error(err, "Session policy not reloaded; the last good one stays in force")
			lastErr = err.Error()
		case err != nil:
		case changed:
			lastErr = ""
			logger.Info("Session policy reloaded", "rules", len(s.Current().rules))
		}
	}
}

// reload reads the file and, when it changed and parses, puts it in force.
func (s *Source) reload() (changed bool, err error) {
	data, err := os.ReadFile(s.path)
	if err == nil && s.data != nil && bytes.Equal(data, s.data) {
		return false, nil
	}
	var p *Policy
	if err == nil {
		p, err = s.load(data)
	}
	if err != nil {
		err = fmt.Errorf("session policy %s: %w", s.path, err)
		reloadsTotal.WithLabelValues("error").Inc()
		lastReloadFailed.Set(1)
		return false, err
	}
	s.data = data
	s.current.Store(p)
	reloadsTotal.WithLabelValues("success").Inc()
	lastReloadFailed.Set(0)
	rulesInForce.Set(float64(len(p.rules)))
	return true, nil
}
