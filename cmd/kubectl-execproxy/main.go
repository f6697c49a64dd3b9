// kubectl-execproxy is the kubectl plugin of exec-proxy: kubectl execproxy
// setup|exec|attach|port-forward|sessions|kill|replay.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/exec-proxy/exec-proxy/cmd/kubectl-execproxy/app"
)

func main() {
	cmd := app.NewCommand(os.Stdout)
	// Errors carry servers' messages and names users chose: printed escaped, as cobra would print them.
	cmd.SilenceErrors = true
	err := cmd.Execute()
	var exit *app.ExitError
	switch {
	case errors.As(err, &exit):
		// As kubectl prints it (its lines, no "Error:"), each line escaped; and kubectl's exit code.
		if exit.Message != "" {
			lines := strings.Split(strings.TrimSuffix(exit.Message, "\n"), "\n")
			for i, line := range lines {
				lines[i] = app.EscapeTerminal(line)
			}
			fmt.Fprintln(os.Stderr, strings.Join(lines, "\n"))
		}
		os.Exit(exit.Code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "Error:", app.EscapeTerminal(err.Error()))
		os.Exit(1)
	}
}
