package options

import (
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"

	"github.com/exec-proxy/exec-proxy/pkg/apiserver"
	"github.com/exec-proxy/exec-proxy/pkg/kuberoute"
)

// RouteOptions say what the route (api.RoutePrefix) does with the requests that are not sessions.
type RouteOptions struct {
	PassThrough           bool
	MaxLongRunningPerUser int
}

func NewRouteOptions() *RouteOptions {
	return &RouteOptions{PassThrough: true, MaxLongRunningPerUser: 100}
}

func (o *RouteOptions) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.PassThrough, "route-pass-through", o.PassThrough,
		"Pass the route's requests that are not sessions (get, logs -f, apply, auth can-i...) to kube-apiserver as the user, "+
			"by impersonation, so that one kubectl context does everything. Needs impersonate rights (deploy/rbac.yaml, execproxy:route-pass-through). "+
			"When false the route serves only sessions and the reads kubectl makes for them.")
	fs.IntVar(&o.MaxLongRunningPerUser, "route-max-long-running-requests-per-user", o.MaxLongRunningPerUser,
		"Long-running requests (watches, logs, proxy) a user may pass through the route at once on this replica (0: unlimited).")
}

func (o *RouteOptions) Validate() []error {
	if o.MaxLongRunningPerUser < 0 {
		return []error{fmt.Errorf("--route-max-long-running-requests-per-user must not be negative")}
	}
	return nil
}

// ToPassThrough builds the route's pass-through to the kube-apiserver of cfg, with cfg's
// credentials over HTTP/1.1; nil when it is off. HTTP/1.1, since an HTTP/2 stream buffers up to
// 4 MiB of a watch or a followed log its client reads slowly: over HTTP/1.1 TCP holds kube-apiserver
// back, and exec-proxy holds the proxy's copy buffer alone.
func (o *RouteOptions) ToPassThrough(cfg *rest.Config) (*kuberoute.PassThrough, error) {
	if !o.PassThrough {
		return nil, nil
	}
	cfg = rest.CopyConfig(cfg)
	cfg.NextProtos = []string{"http/1.1"}
	host, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver's URL for --route-pass-through: %w", err)
	}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver's transport for --route-pass-through: %w", err)
	}
	return kuberoute.NewPassThrough(host, rt).WithLongRunningCap(o.MaxLongRunningPerUser, apiserver.LongRunning), nil
}
