// grafana-schema checks Grafana dashboards against Grafana's own schema, as the Grafana Foundation
// SDK (Apache 2.0) generates it from Grafana's schema definitions: every field a type requires is
// there, no field is unknown, and each panel's options are those of its panel plugin. Grafana itself
// (AGPL) is not run. Usage: grafana-schema FILE...; exit 1 names each fault.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: grafana-schema FILE...")
		os.Exit(2)
	}
	// Panel options and queries are decoded by their plugin's type, not left as any.
	plugins.RegisterDefaultPlugins()
	failed := false
	for _, file := range os.Args[1:] {
		if err := check(file); err != nil {
			fmt.Fprintf(os.Stderr, "%s:\n%v\n", file, err)
			failed = true
			continue
		}
		fmt.Printf("%s: valid by Grafana's dashboard schema\n", file)
	}
	if failed {
		os.Exit(1)
	}
}

func check(file string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var d dashboard.Dashboard
	if err := nilIfEmpty(d.UnmarshalJSONStrict(raw)); err != nil {
		return err
	}
	if err := nilIfEmpty(d.Validate()); err != nil {
		return err
	}
	if len(d.Panels) == 0 {
		return errors.New("no panels")
	}
	return nil
}

// nilIfEmpty: the SDK returns an empty cog.BuildErrors, not nil, when nothing is wrong.
func nilIfEmpty(err error) error {
	var errs cog.BuildErrors
	if errors.As(err, &errs) && len(errs) == 0 {
		return nil
	}
	return err
}
