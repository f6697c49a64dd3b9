package options

import (
	"fmt"

	"github.com/spf13/pflag"
)

// Admission modes.
const (
	AdmissionCluster = "cluster"
	AdmissionNone    = "none"
)

// AdmissionOptions say whether sessions go through the cluster's own admission.
type AdmissionOptions struct {
	Mode       string
	ConfigFile string
}

func NewAdmissionOptions() *AdmissionOptions { return &AdmissionOptions{Mode: AdmissionCluster} }

func (o *AdmissionOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Mode, "admission", o.Mode,
		"cluster: run the cluster's ValidatingAdmissionPolicies and validating webhooks for every session (CONNECT pods/exec, attach, portforward), "+
			"as kube-apiserver runs them on its own exec path, and for exec-proxy's own API; none: run no admission.")
	fs.StringVar(&o.ConfigFile, "admission-control-config-file", o.ConfigFile,
		"kube-apiserver's admission configuration file (AdmissionConfiguration): the kubeconfig with which exec-proxy calls webhooks that require client credentials, as kube-apiserver does.")
}

func (o *AdmissionOptions) Validate() []error {
	switch {
	case o.Mode != AdmissionCluster && o.Mode != AdmissionNone:
		return []error{fmt.Errorf("--admission must be %s or %s, not %q", AdmissionCluster, AdmissionNone, o.Mode)}
	case o.ConfigFile != "" && o.Mode == AdmissionNone:
		return []error{fmt.Errorf("--admission-control-config-file needs --admission=%s", AdmissionCluster)}
	}
	return nil
}
