package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/kubectl/pkg/util/term"
)

func newWatchCommand(g *globalOptions) *cobra.Command {
	return newAttachCommand(g, "watch ID",
		"Watch a live TTY session: what is on its screen, then its output as it comes (read-only)",
		"Watch a live exec or attach session that has a TTY, from whichever exec-proxy replica holds it: its "+
			"screen as it is now, then its output live, until the session ends or you press Ctrl-C. Nothing you type "+
			"reaches it. Needs get on execsessions/attach; the watch is in the audit (watch-start and watch-end records).",
		watchSession, syscall.SIGINT, syscall.SIGTERM)
}

// attachFunc serves a command on a live session over its execsessions/attach.
type attachFunc func(ctx context.Context, cfg *rest.Config, client *rest.RESTClient, namespace, id string, cmd *cobra.Command) error

// newAttachCommand is a command on the live session ID (watch, join): it finds the session's
// namespace when -n is not given, and runs until one of signals.
func newAttachCommand(g *globalOptions, use, short, long string, run attachFunc, signals ...os.Signal) *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use: use, Short: short, Long: long,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), signals...)
			defer stop()
			client, _, err := g.sessionsClient()
			if err != nil {
				return err
			}
			id := args[0]
			if namespace == "" {
				if namespace, err = sessionNamespace(ctx, client, id); err != nil {
					return err
				}
			}
			cfg, _, err := g.apiConfig()
			if err != nil {
				return err
			}
			return run(ctx, cfg, client, namespace, id, cmd)
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "the session's namespace (default: found by its id)")
	return cmd
}

// watchSession streams the session's terminal to the command's output over WebSocket, as kubectl
// attach does; an interrupted watch ends quietly.
func watchSession(ctx context.Context, cfg *rest.Config, client *rest.RESTClient, namespace, id string, cmd *cobra.Command) error {
	u := client.Get().Namespace(namespace).Resource("execsessions").Name(id).SubResource("attach").
		Param("stdout", "true").Param("tty", "true").URL()
	executor, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
	if err != nil {
		return fmt.Errorf("watching session %s: %w", id, err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Watching session %s/%s (read-only); Ctrl-C stops.\r\n", EscapeTerminal(namespace), EscapeTerminal(id))
	// A raw terminal keeps the watcher's keys from echoing over the session's screen; Ctrl-C and
	// Ctrl-D then arrive as bytes, read here.
	tty := term.TTY{In: cmd.InOrStdin(), Out: cmd.OutOrStdout(), Raw: true}
	if !tty.IsTerminalIn() {
		tty.In = nil
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if tty.In != nil {
		go func() {
			b := make([]byte, 64)
			for {
				n, err := tty.In.Read(b)
				if err != nil || bytes.ContainsAny(b[:n], "\x03\x04") {
					stop()
					return
				}
			}
		}()
	}
	err = tty.Safe(func() error {
		defer fmt.Fprint(cmd.OutOrStdout(), "\x1b[0m\x1b[?25h\x1b[?1049l") // the session may have left the screen so
		return executor.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: cmd.OutOrStdout(), Tty: true})
	})
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("watching session %s: %w", id, err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "\r\nSession %s/%s ended.\r\n", EscapeTerminal(namespace), EscapeTerminal(id))
	return nil
}
