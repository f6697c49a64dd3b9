package options

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
)

// KubeletOptions say how to reach and trust kubelets; names follow kube-apiserver's flags.
type KubeletOptions struct {
	CertificateAuthority  string
	InsecureSkipTLSVerify bool
	ClientCertificate     string
	ClientKey             string
	TokenFile             string
	PreferredAddressTypes []string
	Port                  int
}

func NewKubeletOptions() *KubeletOptions {
	return &KubeletOptions{PreferredAddressTypes: nodeconn.DefaultPreferredAddressTypes, Port: 10250}
}

func (o *KubeletOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.CertificateAuthority, "kubelet-certificate-authority", o.CertificateAuthority,
		"CA bundle that signs kubelet serving certificates. Required unless --kubelet-insecure-skip-tls-verify.")
	fs.BoolVar(&o.InsecureSkipTLSVerify, "kubelet-insecure-skip-tls-verify", o.InsecureSkipTLSVerify,
		"Do not verify kubelet serving certificates. Opens every session to man-in-the-middle: for tests only.")
	fs.StringVar(&o.ClientCertificate, "kubelet-client-certificate", o.ClientCertificate,
		"Client certificate exec-proxy presents to kubelets (needs nodes/proxy). Re-read when it changes on disk.")
	fs.StringVar(&o.ClientKey, "kubelet-client-key", o.ClientKey, "Key of --kubelet-client-certificate.")
	fs.StringVar(&o.TokenFile, "kubelet-token-file", o.TokenFile,
		"Bearer token exec-proxy presents to kubelets instead of a client certificate, re-read as it rotates. "+
			"Defaults, in a pod and without a client certificate, to the service account token. Every kubelet sees the token "+
			"and root on any node could replay it: prefer a client certificate (docs/kubelet-credential.md).")
	fs.StringSliceVar(&o.PreferredAddressTypes, "kubelet-preferred-address-types", o.PreferredAddressTypes,
		"Order of Node address types to reach a kubelet by.")
	fs.IntVar(&o.Port, "kubelet-port", o.Port,
		"Kubelet port when a Node does not publish status.daemonEndpoints.kubeletEndpoint.port.")
}

var addressTypes = sets.New(string(corev1.NodeHostName), string(corev1.NodeInternalIP), string(corev1.NodeInternalDNS),
	string(corev1.NodeExternalIP), string(corev1.NodeExternalDNS))

func (o *KubeletOptions) Validate() []error {
	var errs []error
	if o.CertificateAuthority == "" && !o.InsecureSkipTLSVerify {
		errs = append(errs, fmt.Errorf("--kubelet-certificate-authority is required to verify kubelets (or, for tests only, --kubelet-insecure-skip-tls-verify)"))
	}
	if o.CertificateAuthority != "" && o.InsecureSkipTLSVerify {
		errs = append(errs, fmt.Errorf("--kubelet-certificate-authority and --kubelet-insecure-skip-tls-verify exclude each other"))
	}
	switch {
	case (o.ClientCertificate == "") != (o.ClientKey == ""):
		errs = append(errs, fmt.Errorf("--kubelet-client-certificate and --kubelet-client-key go together"))
	case o.ClientCertificate != "" && o.TokenFile != "":
		errs = append(errs, fmt.Errorf("--kubelet-client-certificate and --kubelet-token-file exclude each other"))
	case o.ClientCertificate == "" && o.TokenFile == "":
		errs = append(errs, fmt.Errorf("kubelets need exec-proxy's credential: --kubelet-client-certificate and --kubelet-client-key, "+
			"or --kubelet-token-file (no service account token found at %s)", serviceAccountTokenFile))
	}
	if len(o.PreferredAddressTypes) == 0 {
		errs = append(errs, fmt.Errorf("--kubelet-preferred-address-types must name at least one type"))
	}
	for _, t := range o.PreferredAddressTypes {
		if !addressTypes.Has(t) {
			errs = append(errs, fmt.Errorf("--kubelet-preferred-address-types: unknown type %q (one of %v)", t, sets.List(addressTypes)))
		}
	}
	if o.Port < 1 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("--kubelet-port must be from 1 to 65535"))
	}
	return errs
}

// serviceAccountTokenFile is where a pod's service account token is mounted.
const serviceAccountTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// Complete uses the pod's service account token when no credential is given.
func (o *KubeletOptions) Complete() {
	if o.ClientCertificate == "" && o.ClientKey == "" && o.TokenFile == "" {
		if _, err := os.Stat(serviceAccountTokenFile); err == nil {
			o.TokenFile = serviceAccountTokenFile
		}
	}
}

func (o *KubeletOptions) TransportConfig() nodeconn.TransportConfig {
	return nodeconn.TransportConfig{
		CAFile: o.CertificateAuthority, InsecureSkipTLSVerify: o.InsecureSkipTLSVerify,
		ClientCertFile: o.ClientCertificate, ClientKeyFile: o.ClientKey, TokenFile: o.TokenFile,
	}
}
