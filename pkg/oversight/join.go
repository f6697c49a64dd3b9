package oversight

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"

	"k8s.io/klog/v2"
)

// Client is a session's client connection, as a join sees it (*clientconn.Conn).
type Client interface {
	// Inject writes p to the kubelet as the client's own stdin.
	Inject(ctx context.Context, p []byte) error
	// Notice writes text to the client's terminal, as stdout.
	Notice(text []byte) error
}

// Join is one joiner typing into a session (kubectl execproxy join), as the client's own stdin.
type Join struct {
	session string
	client  Client
	name    string // the joiner's, terminal-safe
	typed   atomic.Int64
}

// NewJoin lets joiner type into session through client, whose terminal is told who joined; an
// error if it cannot be told, since no one types into a session unseen.
func NewJoin(session string, client Client, joiner string) (*Join, error) {
	j := &Join{session: session, client: client, name: terminalSafe(joiner)}
	if err := client.Notice([]byte("\r\n[exec-proxy: " + j.name + " joined this session and can type]\r\n")); err != nil {
		return nil, err
	}
	return j, nil
}

// Type writes p to the session's stdin, between its client's frames; it returns once p is on its
// way to the kubelet, or with why it is not (the session's stdin ended, the session's end, ctx's).
func (j *Join) Type(ctx context.Context, p []byte) error {
	if err := j.client.Inject(ctx, p); err != nil {
		return fmt.Errorf("typing into session %s: %w", j.session, err)
	}
	j.typed.Add(int64(len(p)))
	return nil
}

// Typed is how many bytes the joiner typed into the session.
func (j *Join) Typed() int64 { return j.typed.Load() }

// Leave tells the session's client that the joiner left.
func (j *Join) Leave(logger klog.Logger) {
	if err := j.client.Notice([]byte("\r\n[exec-proxy: " + j.name + " left]\r\n")); err != nil {
		logger.V(2).Info("The session's client was not told a joiner left", "session", j.session, "err", err)
	}
}

// terminalSafe is s with what is not graphic (control characters, bidirectional controls, line
// separators, bytes that are not UTF-8) written as Go escapes: a joiner's name cannot move the
// owner's cursor or forge a line.
func terminalSafe(s string) string {
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}
