// exec-proxy is an aggregated Kubernetes API server that carries kubectl exec, attach and
// port-forward sessions to kubelets: authorized with the user's own RBAC, throttled and audited.
package main

import (
	"os"

	// Mozilla's roots, used only where the system has none: the image has no CA bundle, and a
	// recording bucket over public TLS (S3) needs one. The CAs exec-proxy is given are its own.
	_ "golang.org/x/crypto/x509roots/fallback"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/cli"

	"github.com/exec-proxy/exec-proxy/cmd/exec-proxy/app"
)

func main() {
	ctx := genericapiserver.SetupSignalContext()
	os.Exit(cli.Run(app.NewCommand(ctx)))
}
