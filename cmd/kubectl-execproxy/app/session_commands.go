package app

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/kubectl/pkg/cmd/attach"
	"k8s.io/kubectl/pkg/cmd/exec"
	"k8s.io/kubectl/pkg/cmd/portforward"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

// reasonParam is the query parameter of a session's URL (pods/NAME/exec, attach, portforward) that
// carries the session's reason to exec-proxy.
const reasonParam = "reason"

const reasonHelp = `--reason is the session's reason, a ticket id say: a session policy can require one (matching
its pattern), and exec-proxy writes it into the session's audit record. Stock kubectl cannot send
one; this command is kubectl's own with --reason added. An empty --reason sends none.

The session goes through exec-proxy: a context whose server is kube-apiserver is taken to
exec-proxy's route on it; a context made by "kubectl execproxy setup" is used as it is.`

// newSessionCommands are kubectl's exec, attach and port-forward, through exec-proxy's route and
// with --reason.
func newSessionCommands(g *globalOptions, streams genericiooptions.IOStreams) []*cobra.Command {
	return []*cobra.Command{
		newKubectlCommand(g, streams, "exec", exec.NewCmdExec),
		newKubectlCommand(g, streams, "attach", attach.NewCmdAttach),
		newKubectlCommand(g, streams, "port-forward", portforward.NewCmdPortForward),
	}
}

// newKubectlCommand is kubectl's command made by newCmd, with kubectl's flags but for the root's
// --kubeconfig and --context, which it takes from g.
func newKubectlCommand(g *globalOptions, streams genericiooptions.IOStreams, name string,
	newCmd func(cmdutil.Factory, genericiooptions.IOStreams) *cobra.Command) *cobra.Command {
	var reason string
	flags := genericclioptions.NewConfigFlags(true).WithDiscoveryQPS(50).WithWarningPrinter(streams)
	flags.KubeConfig, flags.Context = nil, nil // not added as flags: the root has them
	flags.WrapConfigFn = func(cfg *rest.Config) *rest.Config { return sessionConfig(cfg, reason) }
	cmd := newCmd(cmdutil.NewFactory(cmdutil.NewMatchVersionFlags(flags)), streams)
	flags.AddFlags(cmd.Flags())
	flags.KubeConfig, flags.Context = &g.kubeconfig, &g.context
	cmd.Flags().StringVar(&reason, "reason", "", "The session's reason (a ticket id, say), which a session policy can require; exec-proxy records it in the session's audit record")
	cmd.Short += ", through exec-proxy, with a reason (kubectl " + name + " and --reason)"
	cmd.Long += "\n\n" + reasonHelp
	cmd.Example = strings.ReplaceAll(cmd.Example, "kubectl "+name+" ", "kubectl execproxy "+name+" --reason TICKET-123 ")
	run := cmd.Run
	cmd.Run = nil
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return runKubectl(run, cmd, args) }
	return cmd
}

// ExitError is how a kubectl command ended: kubectl's cmdutil.CheckErr would print Message (which
// may span lines) and exit with Code, the remote command's own for a failed exec.
type ExitError struct {
	Message string
	Code    int
}

func (e *ExitError) Error() string { return e.Message }

// runKubectl runs kubectl's run, which ends on an error by cmdutil.CheckErr's fatal handler, and
// returns that error as an *ExitError instead of exiting. The handler must not return, or run would
// go on after the failed step: it panics and runKubectl recovers.
func runKubectl(run func(*cobra.Command, []string), cmd *cobra.Command, args []string) (err error) {
	type fatal struct{ ExitError }
	cmdutil.BehaviorOnFatal(func(msg string, code int) { panic(fatal{ExitError{msg, code}}) })
	defer cmdutil.DefaultBehaviorOnFatal()
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			err = &f.ExitError
		}
	}()
	run(cmd, args)
	return nil
}

// sessionConfig points cfg at exec-proxy's route, unless it is there already, and has its sessions'
// URLs carry reason.
func sessionConfig(cfg *rest.Config, reason string) *rest.Config {
	base, _ := apiServer(cfg.Host)
	cfg.Host = base + api.RoutePrefix
	if reason != "" {
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &reasonRoundTripper{reason: reason, next: rt} })
	}
	return cfg
}

// reasonRoundTripper adds the reason to the query of a session's request. client-go applies a
// rest.Config's WrapTransport to the SPDY and WebSocket upgrades of exec, attach and port-forward
// alike (transport.HTTPWrappersForConfig), so this is the one place the reason is added.
type reasonRoundTripper struct {
	reason string
	next   http.RoundTripper
}

func (rt *reasonRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if !isSession(req.URL.Path) {
		return rt.next.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	if req.URL.RawQuery != "" {
		req.URL.RawQuery += "&"
	}
	req.URL.RawQuery += url.Values{reasonParam: {rt.reason}}.Encode()
	return rt.next.RoundTrip(req)
}

// WrappedRoundTripper lets client-go reach the transport underneath (utilnet.RoundTripperWrapper).
func (rt *reasonRoundTripper) WrappedRoundTripper() http.RoundTripper { return rt.next }

// isSession tells a session's path, .../pods/NAME/exec|attach|portforward, from others (a pod
// named exec, say).
func isSession(path string) bool {
	parts := strings.Split(path, "/")
	if len(parts) < 3 || parts[len(parts)-3] != "pods" {
		return false
	}
	switch parts[len(parts)-1] {
	case "exec", "attach", "portforward":
		return true
	}
	return false
}
