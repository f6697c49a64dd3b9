package app

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

// groupPrefix marks a group as the subject of lock and unlock: group:GROUP.
const groupPrefix = "group:"

// subject is the user or group of USER|group:GROUP.
func subject(arg string) (user, group string, err error) {
	if g, ok := strings.CutPrefix(arg, groupPrefix); ok {
		user, group = "", g
	} else {
		user = arg
	}
	if user == "" && group == "" {
		return "", "", fmt.Errorf("no user or group in %q", arg)
	}
	return user, group, nil
}

func newLockCommand(g *globalOptions) *cobra.Command {
	var reason string
	var lockFor time.Duration
	cmd := &cobra.Command{
		Use:   "lock USER|group:GROUP",
		Short: "End every live session of a user (or of a group's members) on every replica, and refuse new ones until unlocked or --for has passed",
		Long: `Lock a user, or every member of a group, out of exec-proxy: their live sessions end (the end record
says which lock ended them) and new ones, and kubectl debug's containers through exec-proxy, are
refused with a 403 naming the lock, its reason, who locked and until when.

The lock is the execlock user-USER (or group-GROUP). Locking again renews it: the new reason and
locker, and the later expiry of the two (a lock without --for never expires), so a second lock never
shortens the first; to shorten one, unlock it and lock again. Needs create on execlocks.`,
		Example: "  kubectl execproxy lock alice --reason 'INC-42: laptop stolen' --for 24h\n  kubectl execproxy lock group:contractors",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			user, group, err := subject(args[0])
			if err != nil {
				return err
			}
			lock := &api.ExecLock{TypeMeta: metav1.TypeMeta{APIVersion: api.SchemeGroupVersion.String(), Kind: "ExecLock"},
				ObjectMeta: metav1.ObjectMeta{Name: api.LockName(user, group)},
				Spec:       api.ExecLockSpec{User: user, Group: group, Reason: reason}}
			switch {
			case lockFor < 0:
				return fmt.Errorf("--for must not be negative")
			case lockFor > 0:
				seconds := int64((lockFor + time.Second - 1) / time.Second)
				lock.Spec.ExpirationSeconds = &seconds
			}
			client, _, err := g.sessionsClient()
			if err != nil {
				return err
			}
			got := &api.ExecLock{}
			if err := client.Post().Resource("execlocks").Body(lock).Do(cmd.Context()).Into(got); err != nil {
				return fmt.Errorf("locking %s: %w", args[0], err)
			}
			until := "until unlocked"
			if t := got.Status.ExpirationTimestamp; t != nil {
				until = "until " + t.Local().Format(time.RFC3339)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "execlock %s set, %s: live sessions end on every replica, new ones are refused\n", EscapeTerminal(got.Name), until)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (an incident id, say): every refusal and end record repeats it")
	cmd.Flags().DurationVar(&lockFor, "for", 0, "how long the lock holds (default: until unlocked)")
	return cmd
}

func newUnlockCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "unlock USER|group:GROUP",
		Short: "Remove the lock of a user or group: their sessions are let in again (unless another lock applies)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			user, group, err := subject(args[0])
			if err != nil {
				return err
			}
			client, _, err := g.sessionsClient()
			if err != nil {
				return err
			}
			name := api.LockName(user, group)
			if err := client.Delete().Resource("execlocks").Name(name).Do(cmd.Context()).Error(); err != nil {
				return fmt.Errorf("unlocking %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "execlock %s removed\n", EscapeTerminal(name))
			return nil
		},
	}
}

func newLocksCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "locks",
		Short: "List the locks (kubectl get execlocks, in short)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := listLocks(cmd.Context(), g)
			if err != nil {
				return err
			}
			printLocks(cmd.OutOrStdout(), list.Items, time.Now())
			return nil
		},
	}
}

func listLocks(ctx context.Context, g *globalOptions) (*api.ExecLockList, error) {
	client, _, err := g.sessionsClient()
	if err != nil {
		return nil, err
	}
	list := &api.ExecLockList{}
	if err := client.Get().Resource("execlocks").Do(ctx).Into(list); err != nil {
		return nil, fmt.Errorf("listing execlocks: %w", err)
	}
	return list, nil
}

func printLocks(out io.Writer, items []api.ExecLock, now time.Time) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tUSER\tGROUP\tREASON\tLOCKED BY\tAGE\tEXPIRES")
	e := EscapeTerminal // the names and the reason come from users
	for _, l := range items {
		expires := "<none>"
		if t := l.Status.ExpirationTimestamp; t != nil {
			expires = "in " + duration.HumanDuration(t.Sub(now))
			if !now.Before(t.Time) {
				expires = "expired"
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e(l.Name), e(l.Spec.User), e(l.Spec.Group), e(l.Spec.Reason), e(l.Status.LockedBy),
			duration.HumanDuration(now.Sub(l.Status.LockedAt.Time)), expires)
	}
	_ = w.Flush()
}
