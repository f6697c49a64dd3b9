package proxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/pkg/oversight"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/clientconn"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// ErrNotJoinable: the session cannot be joined (why is in the message); a client's mistake.
var ErrNotJoinable = errors.New("the session cannot be joined")

// ErrStdinEnded: the session's stdin ended; nothing more can be typed into it.
var ErrStdinEnded = clientconn.ErrStdinEnded

// Join is one joiner typing into a session (kubectl execproxy join), as the client's own stdin.
type Join struct {
	s      *Session
	client *clientconn.Conn
	name   string // the joiner's, terminal-safe
	typed  atomic.Int64
}

// Joinable tells why the session cannot be joined, if it cannot (an error wrapping
// ErrNotJoinable): only an exec or attach session whose request asked for stdin and a TTY can be,
// over SPDY or a binary WebSocket protocol (v4, v5), once it started.
func (s *Session) Joinable() error {
	_, err := s.joinable()
	return err
}

func (s *Session) joinable() (*clientconn.Conn, error) {
	if !s.Stdin || !s.TTY || s.Kind == session.KindPortForward {
		return nil, fmt.Errorf("%w: only exec and attach sessions with stdin and a TTY (-it) can be joined", ErrNotJoinable)
	}
	s.mu.Lock()
	client, protocol, code := s.client, s.answer.protocol, s.answer.code
	s.mu.Unlock()
	switch {
	case client == nil || code == 0:
		return nil, fmt.Errorf("%w: it has not started", ErrNotJoinable)
	case !client.Noticeable():
		return nil, fmt.Errorf("%w: its client cannot be shown who joins (a bandwidth-limited session)", ErrNotJoinable)
	case strings.Contains(protocol, "base64"):
		return nil, fmt.Errorf("%w: its client speaks %s, whose stdin exec-proxy does not write", ErrNotJoinable, protocol)
	}
	return client, nil
}

// Join lets joiner type into the session (see Joinable); its client hears who joined on its terminal.
func (s *Session) Join(joiner string) (*Join, error) {
	client, err := s.joinable()
	if err != nil {
		return nil, err
	}
	if term := s.Terminal(); term != nil && term.Watchers() >= oversight.MaxWatchers {
		return nil, oversight.ErrTooManyWatchers
	}
	j := &Join{s: s, client: client, name: terminalSafe(joiner)}
	// No one types into a session unseen: a client that cannot be told refuses the join.
	if err := client.Notice([]byte("\r\n[exec-proxy: " + j.name + " joined this session and can type]\r\n")); err != nil {
		return nil, fmt.Errorf("%w: its client cannot be told of a join: %w", ErrNotJoinable, err)
	}
	return j, nil
}

// Type writes p to the session's stdin, between its client's frames; it returns once p is on its
// way to the kubelet, or with why it is not (ErrStdinEnded, the session's end, ctx's).
func (j *Join) Type(ctx context.Context, p []byte) error {
	if err := j.client.Inject(ctx, p); err != nil {
		return fmt.Errorf("typing into session %s: %w", j.s.ID, err)
	}
	j.typed.Add(int64(len(p)))
	return nil
}

// Typed is how many bytes the joiner typed into the session.
func (j *Join) Typed() int64 { return j.typed.Load() }

// Leave tells the session's client that the joiner left.
func (j *Join) Leave(logger klog.Logger) {
	if err := j.client.Notice([]byte("\r\n[exec-proxy: " + j.name + " left]\r\n")); err != nil {
		logger.V(2).Info("The session's client was not told a joiner left", "session", j.s.ID, "err", err)
	}
}

// terminalSafe is s with what is not graphic (control characters, bidirectional controls, line
// separators, bytes that are not UTF-8) written as Go escapes: a joiner's name cannot move the
// owner's cursor or forge a line.
func terminalSafe(s string) string {
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}
