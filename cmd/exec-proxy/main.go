// exec-proxy is an aggregated Kubernetes API server that carries kubectl exec, attach and
// port-forward sessions to kubelets: authorized with the user's own RBAC, throttled and audited.
package main

import (
	"os"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/cli"

	"github.com/exec-proxy/exec-proxy/cmd/exec-proxy/app"
)

func main() {
	ctx := genericapiserver.SetupSignalContext()
	os.Exit(cli.Run(app.NewCommand(ctx)))
}
