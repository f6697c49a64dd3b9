package options

import (
	"github.com/spf13/pflag"
	genericapiserver "k8s.io/apiserver/pkg/server"
)

// DebuggingOptions turn on the generic API server's debug handlers, off by default: /debug/pprof
// reveals memory that holds credentials, and /debug/flags/v raises the log verbosity at run time.
type DebuggingOptions struct {
	Profiling           bool
	ContentionProfiling bool
}

func (o *DebuggingOptions) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.Profiling, "profiling", o.Profiling,
		"Serve /debug/pprof/ and /debug/flags/v (changes the log verbosity at run time), to users authorized for those paths.")
	fs.BoolVar(&o.ContentionProfiling, "contention-profiling", o.ContentionProfiling,
		"Enable block profiling, if profiling is enabled.")
}

// ApplyTo sets the generic server's debug handlers; the unprotected debug socket is never served.
func (o *DebuggingOptions) ApplyTo(c *genericapiserver.Config) {
	c.EnableProfiling = o.Profiling
	c.EnableContentionProfiling = o.Profiling && o.ContentionProfiling
	c.DebugSocketPath = ""
}
