package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/exec-proxy/exec-proxy/pkg/oversight"
	"github.com/exec-proxy/exec-proxy/pkg/proxy/clientconn"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// ErrNotJoinable: the session cannot be joined (why is in the message); a client's mistake.
var ErrNotJoinable = errors.New("the session cannot be joined")

// errNotStarted: the session's client has not had the answer to its upgrade yet.
var errNotStarted = fmt.Errorf("%w: it has not started", ErrNotJoinable)

// ErrStdinEnded: the session's stdin ended; nothing more can be typed into it.
var ErrStdinEnded = clientconn.ErrStdinEnded

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
	case client == nil || code == 0 || !client.Upgraded():
		return nil, errNotStarted
	case !client.Noticeable():
		return nil, fmt.Errorf("%w: its client cannot be shown who joins (a bandwidth-limited session)", ErrNotJoinable)
	case strings.Contains(protocol, "base64"):
		return nil, fmt.Errorf("%w: its client speaks %s, whose stdin exec-proxy does not write", ErrNotJoinable, protocol)
	}
	return client, nil
}

// JoinStarted is Join for a session that has just started: the 101 may still be on its way to the
// client, and over SPDY the client opens its streams after it, while the join's notice needs
// stdout. It tries again until ctx or the session ends.
func (s *Session) JoinStarted(ctx context.Context, joiner string) (*oversight.Join, error) {
	for {
		j, err := s.Join(joiner)
		if !errors.Is(err, errNotStarted) && !errors.Is(err, clientconn.ErrNoStdout) {
			return j, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-s.ctx.Done():
			return nil, err
		case <-time.After(20 * time.Millisecond): // kubectl opens its streams at once
		}
	}
}

// Join lets joiner type into the session (see Joinable), as its client's own stdin; its client
// hears who joined on its terminal.
func (s *Session) Join(joiner string) (*oversight.Join, error) {
	client, err := s.joinable()
	if err != nil {
		return nil, err
	}
	if term := s.Terminal(); term != nil && term.Watchers() >= oversight.MaxWatchers {
		return nil, oversight.ErrTooManyWatchers
	}
	j, err := oversight.NewJoin(s.ID, client, joiner)
	if err != nil {
		return nil, fmt.Errorf("%w: its client cannot be told of a join: %w", ErrNotJoinable, err)
	}
	return j, nil
}
