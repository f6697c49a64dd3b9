package options

import (
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// serviceAccountNamespace is where a pod's own namespace is mounted (a variable for tests).
var serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// LockOptions say where the execlocks (kubectl execproxy lock) are kept.
type LockOptions struct {
	Namespace string
}

func (o *LockOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Namespace, "lock-namespace", o.Namespace,
		"Namespace of the execlocks, kept as ConfigMaps labelled execproxy.dev/execlock (exec-proxy's own; it needs get, list, watch, "+
			"create, update and delete on configmaps there). Default: --peer-namespace, else the pod's namespace. Empty outside a pod "+
			"without --peer-namespace: execlocks are neither served nor enforced.")
}

// Complete defaults the namespace to the replicas' (peers), else the pod's own.
func (o *LockOptions) Complete(peers string) {
	if o.Namespace != "" {
		return
	}
	if o.Namespace = peers; o.Namespace != "" {
		return
	}
	if b, err := os.ReadFile(serviceAccountNamespace); err == nil {
		o.Namespace = strings.TrimSpace(string(b))
	}
}
