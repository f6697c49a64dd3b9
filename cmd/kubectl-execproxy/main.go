// kubectl-execproxy is the kubectl plugin of exec-proxy: kubectl execproxy setup|sessions|kill|replay.
package main

import (
	"fmt"
	"os"

	"github.com/exec-proxy/exec-proxy/cmd/kubectl-execproxy/app"
)

func main() {
	cmd := app.NewCommand(os.Stdout)
	// Errors carry servers' messages and names users chose: printed escaped, as cobra would print them.
	cmd.SilenceErrors = true
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", app.EscapeTerminal(err.Error()))
		os.Exit(1)
	}
}
