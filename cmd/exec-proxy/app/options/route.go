package options

import (
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"

	"github.com/exec-proxy/exec-proxy/pkg/kuberoute"
)

// RouteOptions say what the route (api.RoutePrefix) does with the requests that are not sessions.
type RouteOptions struct {
	PassThrough bool
}

func NewRouteOptions() *RouteOptions { return &RouteOptions{PassThrough: true} }

func (o *RouteOptions) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.PassThrough, "route-pass-through", o.PassThrough,
		"Pass the route's requests that are not sessions (get, logs -f, apply, auth can-i...) to kube-apiserver as the user, "+
			"by impersonation, so that one kubectl context does everything. Needs impersonate rights (deploy/rbac.yaml, execproxy:route-pass-through). "+
			"When false the route serves only sessions and the reads kubectl makes for them.")
}

// PassThrough builds the route's pass-through to the kube-apiserver of cfg, with cfg's credentials;
// nil when it is off.
func (o *RouteOptions) ToPassThrough(cfg *rest.Config) (*kuberoute.PassThrough, error) {
	if !o.PassThrough {
		return nil, nil
	}
	host, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver's URL for --route-pass-through: %w", err)
	}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver's transport for --route-pass-through: %w", err)
	}
	return kuberoute.NewPassThrough(host, rt), nil
}
