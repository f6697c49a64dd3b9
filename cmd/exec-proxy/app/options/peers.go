package options

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"

	"github.com/exec-proxy/exec-proxy/pkg/apiserver"
)

// PeerOptions say how replicas find and trust each other, so that any of them lists and ends the
// sessions of all.
type PeerOptions struct {
	Service              string
	Address              string
	CertificateAuthority string
	ReplicaName          string
}

func NewPeerOptions() *PeerOptions {
	name, _ := os.Hostname()
	return &PeerOptions{ReplicaName: name}
}

func (o *PeerOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Service, "peer-service", o.Service,
		"NAMESPACE/NAME of the Service of all exec-proxy replicas: its EndpointSlices list the peers asked for their sessions. "+
			"Empty: this replica answers for its own sessions only.")
	fs.StringVar(&o.Address, "peer-address", o.Address,
		"This replica's address as the Service's EndpointSlices list it (in a pod: its IP, $(POD_IP)). Required with --peer-service.")
	fs.StringVar(&o.CertificateAuthority, "peer-certificate-authority", o.CertificateAuthority,
		"CA bundle that signs the replicas' serving certificates (the APIService's caBundle). Peers are verified as <service>.<namespace>.svc. Required with --peer-service.")
	fs.StringVar(&o.ReplicaName, "replica-name", o.ReplicaName, "This replica's name in execsessions' status.replica.")
}

func (o *PeerOptions) Validate() []error {
	if o.Service == "" {
		return nil
	}
	var errs []error
	if _, _, ok := o.service(); !ok {
		errs = append(errs, fmt.Errorf("--peer-service must be NAMESPACE/NAME, not %q", o.Service))
	}
	if o.Address == "" {
		errs = append(errs, fmt.Errorf("--peer-address is required with --peer-service"))
	}
	if o.CertificateAuthority == "" {
		errs = append(errs, fmt.Errorf("--peer-certificate-authority is required with --peer-service"))
	} else if _, err := os.Stat(o.CertificateAuthority); err != nil {
		errs = append(errs, fmt.Errorf("--peer-certificate-authority: %w", err))
	}
	return errs
}

func (o *PeerOptions) service() (namespace, name string, ok bool) {
	namespace, name, ok = strings.Cut(o.Service, "/")
	return namespace, name, ok && namespace != "" && name != "" && !strings.Contains(name, "/")
}

// PeerConfig returns how to reach the peers, nil without --peer-service. Peers are called with
// exec-proxy's own credentials (from its kubeconfig), verified as kube-apiserver verifies them.
func (o *PeerOptions) PeerConfig(restConfig *rest.Config, port int) (*apiserver.PeerConfig, error) {
	if o.Service == "" {
		return nil, nil
	}
	namespace, name, _ := o.service()
	cfg := rest.CopyConfig(restConfig)
	cfg.TLSClientConfig = rest.TLSClientConfig{
		CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, CertData: cfg.CertData, KeyData: cfg.KeyData,
		CAFile: o.CertificateAuthority, ServerName: name + "." + namespace + ".svc",
	}
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("peer transport: %w", err)
	}
	return &apiserver.PeerConfig{
		Namespace: namespace, Service: name,
		Self:      net.JoinHostPort(o.Address, strconv.Itoa(port)),
		Transport: transport,
	}, nil
}
