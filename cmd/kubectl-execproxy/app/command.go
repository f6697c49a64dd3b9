// Package app is the kubectl execproxy plugin's commands.
package app

import (
	"fmt"
	"io"
	"os"
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
		Short:         "Use exec-proxy: set kubectl up for it, exec, attach and port-forward with a reason, list and end live sessions, replay recordings",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	cmd.SetOut(out)
	cmd.PersistentFlags().StringVar(&g.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	cmd.PersistentFlags().StringVar(&g.context, "context", "", "kubeconfig context (default: the current one)")
	cmd.AddCommand(newSetupCommand(g), newSessionsCommand(g), newKillCommand(g), newReplayCommand(g), newCoverageCommand(g))
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
	cfg.Host = strings.TrimSuffix(strings.TrimSuffix(cfg.Host, "/"), api.RoutePrefix)
	namespace, _, err := loader.Namespace()
	return cfg, namespace, err
}

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
	if strings.HasSuffix(strings.TrimSuffix(cluster.Server, "/"), api.RoutePrefix) {
		return "", fmt.Errorf("context %q already goes through exec-proxy", from)
	}
	route := cluster.DeepCopy()
	route.Server = strings.TrimSuffix(cluster.Server, "/") + api.RoutePrefix
	name := from + "-execproxy"
	raw.Clusters[ctx.Cluster+"-execproxy"] = route
	newCtx := ctx.DeepCopy()
	newCtx.Cluster = ctx.Cluster + "-execproxy"
	raw.Contexts[name] = newCtx
	return name, nil
}

func newSetupCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "setup",
		Short: "Add a context <context>-execproxy whose exec, attach and port-forward go through exec-proxy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			loader := g.loader()
			raw, err := loader.RawConfig()
			if err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			name, err := routeContext(&raw, g.context)
			if err != nil {
				return err
			}
			if err := clientcmd.ModifyConfig(loader.ConfigAccess(), raw, true); err != nil {
				return fmt.Errorf("writing the kubeconfig: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Context %q added: the same user, through exec-proxy.\n"+
				"  kubectl --context %s exec -it POD -- sh\n  kubectl config use-context %s\n", name, name, name)
			return nil
		},
	}
}
