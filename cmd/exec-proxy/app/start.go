// Package app is exec-proxy's command.
package app

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	cliflag "k8s.io/component-base/cli/flag"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/component-base/term"
	"k8s.io/component-base/version/verflag"
	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/cmd/exec-proxy/app/options"
)

// NewCommand returns exec-proxy's root command.
func NewCommand(ctx context.Context) *cobra.Command {
	// The logging flags consult the feature gate (contextual logging): register its gates first.
	utilruntime.Must(logsapi.AddFeatureGates(utilfeature.DefaultMutableFeatureGate))
	o := options.NewOptions()
	cmd := &cobra.Command{
		Use:   "exec-proxy",
		Short: "An aggregated API server that carries kubectl exec, attach and port-forward to kubelets, throttled and audited",
		RunE: func(c *cobra.Command, _ []string) error {
			verflag.PrintAndExitIfRequested()
			if err := o.ApplyLogging(utilfeature.DefaultMutableFeatureGate); err != nil {
				return err
			}
			return run(ctx, o)
		},
		SilenceUsage: true,
	}
	fss := o.Flags()
	verflag.AddFlags(fss.FlagSet("global"))
	utilfeature.DefaultMutableFeatureGate.AddFlag(fss.FlagSet("global"))
	for _, fs := range fss.FlagSets {
		cmd.Flags().AddFlagSet(fs)
	}
	cols, _, _ := term.TerminalSize(cmd.OutOrStdout())
	cliflag.SetUsageAndHelpFunc(cmd, fss, cols)
	return cmd
}

func run(ctx context.Context, o *options.Options) error {
	logGCPercent(klog.FromContext(ctx))
	if err := o.Complete(); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}
	config, err := o.ServerConfig()
	if err != nil {
		return err
	}
	completed, err := config.Complete()
	if err != nil {
		return err
	}
	server, err := completed.New()
	if err != nil {
		return fmt.Errorf("building exec-proxy: %w", err)
	}
	return server.GenericAPIServer.PrepareRun().RunWithContext(ctx)
}
