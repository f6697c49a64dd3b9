package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/kubectl/pkg/util/term"
)

// leaveKey leaves a joined session: Ctrl-], as telnet has it. Ctrl-C and Ctrl-D go to the session.
const leaveKey = 0x1d

func newJoinCommand(g *globalOptions) *cobra.Command {
	return newAttachCommand(g, "join ID",
		"Join a live TTY session: see its screen and type into it; its owner sees that you joined (Ctrl-] leaves)",
		"Join a live exec or attach session that has stdin and a TTY (-it), from whichever exec-proxy replica holds it: "+
			"its screen as it is now, then its output live, and what you type goes to its stdin as if its owner typed it. "+
			"The owner's terminal shows who joined and left. Ctrl-C and Ctrl-D go to the session; Ctrl-] leaves. Needs create "+
			"on execsessions/attach; the join is in the audit (join-start and join-end records, with the bytes typed).",
		joinSession, syscall.SIGTERM)
}

// joinSession types the command's input into the session and shows its terminal, over WebSocket
// as kubectl attach does, until the session ends or the joiner leaves (Ctrl-]).
func joinSession(ctx context.Context, cfg *rest.Config, client *rest.RESTClient, namespace, id string, cmd *cobra.Command) error {
	u := client.Get().Namespace(namespace).Resource("execsessions").Name(id).SubResource("attach").
		Param("stdin", "true").Param("stdout", "true").Param("tty", "true").URL()
	executor, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
	if err != nil {
		return fmt.Errorf("joining session %s: %w", id, err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Joining session %s/%s: what you type goes to someone else's session, and its owner sees "+
		"that you joined. Ctrl-] leaves.\r\n", EscapeTerminal(namespace), EscapeTerminal(id))
	tty := term.TTY{In: cmd.InOrStdin(), Out: cmd.OutOrStdout(), Raw: true}
	if !tty.IsTerminalIn() {
		tty.In = nil
	}
	ctx, leave := context.WithCancel(ctx)
	defer leave()
	in := &leaveReader{r: cmd.InOrStdin(), leave: leave}
	err = tty.Safe(func() error {
		return executor.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: in, Stdout: cmd.OutOrStdout(), Tty: true})
	})
	if ctx.Err() != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "\r\nLeft session %s/%s.\r\n", EscapeTerminal(namespace), EscapeTerminal(id))
		return nil
	}
	if err != nil {
		return fmt.Errorf("joining session %s: %w", id, err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "\r\nSession %s/%s ended.\r\n", EscapeTerminal(namespace), EscapeTerminal(id))
	return nil
}

// leaveReader is the joiner's keyboard: its bytes go to the session up to the leave key, which
// leaves instead.
type leaveReader struct {
	r     io.Reader
	leave func()
	left  bool
}

func (l *leaveReader) Read(p []byte) (int, error) {
	if l.left {
		return 0, io.EOF
	}
	n, err := l.r.Read(p)
	if i := bytes.IndexByte(p[:n], leaveKey); i >= 0 {
		l.left = true
		l.leave()
		if i == 0 {
			return 0, io.EOF
		}
		return i, nil
	}
	return n, err
}
