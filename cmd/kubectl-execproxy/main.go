// kubectl-execproxy is the kubectl plugin of exec-proxy: kubectl execproxy setup|sessions|kill|replay.
package main

import (
	"os"

	"github.com/exec-proxy/exec-proxy/cmd/kubectl-execproxy/app"
)

func main() {
	if err := app.NewCommand(os.Stdout).Execute(); err != nil {
		os.Exit(1)
	}
}
