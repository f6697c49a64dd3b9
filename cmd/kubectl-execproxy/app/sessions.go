package app

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/rest"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

// sessionsClient reads and deletes execsessions through kube-apiserver.
func (g *globalOptions) sessionsClient() (*rest.RESTClient, string, error) {
	cfg, namespace, err := g.apiConfig()
	if err != nil {
		return nil, "", err
	}
	cfg.GroupVersion = &schema.GroupVersion{Group: api.GroupName, Version: "v1alpha1"}
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = serializer.WithoutConversionCodecFactory{CodecFactory: api.Codecs}
	client, err := rest.RESTClientFor(cfg)
	return client, namespace, err
}

func listSessions(ctx context.Context, client *rest.RESTClient, namespace string) (*api.ExecSessionList, error) {
	list := &api.ExecSessionList{}
	req := client.Get().Resource("execsessions")
	if namespace != "" {
		req = req.Namespace(namespace)
	}
	if err := req.Do(ctx).Into(list); err != nil {
		return nil, fmt.Errorf("listing execsessions: %w", err)
	}
	return list, nil
}

func newSessionsCommand(g *globalOptions) *cobra.Command {
	var all bool
	var namespace string
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List the live sessions (kubectl get execsessions, in short)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, current, err := g.sessionsClient()
			if err != nil {
				return err
			}
			if namespace == "" && !all {
				namespace = current
			}
			list, err := listSessions(cmd.Context(), client, namespace)
			if err != nil {
				return err
			}
			printSessions(cmd.OutOrStdout(), list.Items, time.Now())
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "sessions of every namespace")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "sessions of this namespace (default: the context's)")
	return cmd
}

func printSessions(out io.Writer, items []api.ExecSession, now time.Time) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAMESPACE\tUSER\tTYPE\tPOD\tCONTAINER\tCOMMAND\tAGE\tBYTES IN\tBYTES OUT\tPHASE\tMODERATORS")
	e := EscapeTerminal // every field comes from the server, and argv and names from users
	for _, s := range items {
		command := make([]string, len(s.Spec.Command))
		for i, arg := range s.Spec.Command {
			command[i] = e(arg)
		}
		moderators := "<none>"
		if len(s.Status.Moderators) > 0 {
			moderators = e(strings.Join(s.Status.Moderators, ","))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", e(s.Name), e(s.Namespace), e(s.Spec.User), e(s.Spec.Type), e(s.Spec.Pod),
			e(s.Spec.Container), strings.Join(command, " "), duration.HumanDuration(now.Sub(s.Status.StartTime.Time)),
			s.Status.BytesIn, s.Status.BytesOut, e(cmp.Or(s.Status.Phase, "-")), moderators)
	}
	_ = w.Flush()
}

func newKillCommand(g *globalOptions) *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:   "kill ID",
		Short: "End a live session; its audit record says you killed it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, _, err := g.sessionsClient()
			if err != nil {
				return err
			}
			id := args[0]
			if namespace == "" {
				if namespace, err = sessionNamespace(cmd.Context(), client, id); err != nil {
					return err
				}
			}
			if err := client.Delete().Namespace(namespace).Resource("execsessions").Name(id).Do(cmd.Context()).Error(); err != nil {
				return fmt.Errorf("ending session %s: %w", id, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "session %s/%s ended\n", EscapeTerminal(namespace), EscapeTerminal(id))
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "the session's namespace (default: found by its id)")
	return cmd
}

// sessionNamespace finds the namespace of the live session id: session ids are unique.
func sessionNamespace(ctx context.Context, client *rest.RESTClient, id string) (string, error) {
	list, err := listSessions(ctx, client, "")
	if err != nil {
		return "", err
	}
	for _, s := range list.Items {
		if s.Name == id {
			return s.Namespace, nil
		}
	}
	return "", fmt.Errorf("no live session %q", id)
}
