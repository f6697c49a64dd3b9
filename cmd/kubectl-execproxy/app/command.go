// Package app is the kubectl execproxy plugin's commands.
package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

type globalOptions struct {
	kubeconfig, context string
}

// NewCommand is the plugin's root command, writing to out.
func NewCommand(out io.Writer) *cobra.Command {
	g := &globalOptions{}
	cmd := &cobra.Command{
		Use:           "kubectl-execproxy",
		Short:         "Use exec-proxy: set kubectl up for it, exec, attach and port-forward with a reason, list and end live sessions, lock users out, replay recordings",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	cmd.SetOut(out)
	cmd.PersistentFlags().StringVar(&g.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	cmd.PersistentFlags().StringVar(&g.context, "context", "", "kubeconfig context (default: the current one)")
	cmd.AddCommand(newSetupCommand(g), newSessionsCommand(g), newKillCommand(g), newWatchCommand(g), newJoinCommand(g), newLockCommand(g),
		newUnlockCommand(g), newLocksCommand(g), newReplayCommand(g), newCoverageCommand(g))
	cmd.AddCommand(newSessionCommands(g, genericiooptions.IOStreams{In: os.Stdin, Out: out, ErrOut: os.Stderr})...)
	return cmd
}

func (g *globalOptions) loader() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = g.kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: g.context})
}

// apiConfig is a client for kube-apiserver itself: a context set up for the route is taken back
// to the server it was made from.
func (g *globalOptions) apiConfig() (*rest.Config, string, error) {
	loader := g.loader()
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.Host, _ = apiServer(cfg.Host)
	namespace, _, err := loader.Namespace()
	return cfg, namespace, err
}

// apiServer returns kube-apiserver's URL for server, and whether server is the route (or its legacy
// path) on it.
func apiServer(server string) (string, bool) {
	server = strings.TrimSuffix(server, "/")
	for _, prefix := range []string{api.RoutePrefix, api.LegacyRoutePrefix} {
		if base, ok := strings.CutSuffix(server, prefix); ok {
			return base, true
		}
	}
	return server, false
}

// moveLegacy points the clusters whose server is the route's legacy path, where each session holds
// a kube-apiserver priority-and-fairness seat, at the route; it returns their names.
func moveLegacy(raw *clientcmdapi.Config) []string {
	var moved []string
	for name, cluster := range raw.Clusters {
		if base, ok := strings.CutSuffix(strings.TrimSuffix(cluster.Server, "/"), api.LegacyRoutePrefix); ok {
			cluster.Server = base + api.RoutePrefix
			moved = append(moved, name)
		}
	}
	sort.Strings(moved)
	return moved
}

// errRouted: the context goes through exec-proxy already.
var errRouted = errors.New("goes through exec-proxy already")

// routeContext adds to raw a context named after from, whose cluster is from's with the route's
// server and whose user and namespace are from's; it returns the new context's name.
func routeContext(raw *clientcmdapi.Config, from string) (string, error) {
	if from == "" {
		from = raw.CurrentContext
	}
	ctx, ok := raw.Contexts[from]
	if !ok {
		return "", fmt.Errorf("no context %q in the kubeconfig", from)
	}
	cluster, ok := raw.Clusters[ctx.Cluster]
	if !ok {
		return "", fmt.Errorf("context %q names cluster %q, which the kubeconfig does not have", from, ctx.Cluster)
	}
	base, routed := apiServer(cluster.Server)
	if routed {
		return "", fmt.Errorf("context %q %w", from, errRouted)
	}
	route := cluster.DeepCopy()
	route.Server = base + api.RoutePrefix
	name := from + "-execproxy"
	raw.Clusters[ctx.Cluster+"-execproxy"] = route
	newCtx := ctx.DeepCopy()
	newCtx.Cluster = ctx.Cluster + "-execproxy"
	raw.Contexts[name] = newCtx
	return name, nil
}

func newSetupCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use: "setup",
		Short: "Add a context <context>-execproxy: the same user, with exec, attach, port-forward and cp through exec-proxy " +
			"and everything else on kube-apiserver; and move contexts on the route's legacy path to the route",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			loader := g.loader()
			raw, err := loader.RawConfig()
			if err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			moved := moveLegacy(&raw)
			name, err := routeContext(&raw, g.context)
			if err != nil && !(errors.Is(err, errRouted) && len(moved) > 0) {
				return err
			}
			if err := clientcmd.ModifyConfig(loader.ConfigAccess(), raw, true); err != nil {
				return fmt.Errorf("writing the kubeconfig: %w", err)
			}
			for _, cluster := range moved {
				fmt.Fprintf(cmd.OutOrStdout(), "Cluster %q moved to the route's path %s: its sessions no longer hold kube-apiserver's priority-and-fairness seats.\n", cluster, api.RoutePrefix)
			}
			if name != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "Context %q added: the same user, with sessions through exec-proxy and everything else on kube-apiserver.\n"+
					"  kubectl --context %s exec -it POD -- sh\n  kubectl config use-context %s\n", name, name, name)
			}
			return nil
		},
	}
}
