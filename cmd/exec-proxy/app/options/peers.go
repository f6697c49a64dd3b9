package options

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/spf13/pflag"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/client-go/rest"

	"github.com/exec-proxy/exec-proxy/pkg/apiserver"
)

// PeerOptions say how replicas find and trust each other, so that any of them lists and ends the
// sessions of all. Names follow kube-apiserver's peer flags.
type PeerOptions struct {
	Namespace            string
	AdvertiseAddress     string
	CertificateAuthority string
	ServerName           string
	ReplicaName          string
	// CountsFailurePolicy is what the session caps do with the counts of a replica that does not answer.
	CountsFailurePolicy string
}

func NewPeerOptions() *PeerOptions {
	name, _ := os.Hostname()
	return &PeerOptions{ReplicaName: name, CountsFailurePolicy: "fail-closed"}
}

func (o *PeerOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Namespace, "peer-namespace", o.Namespace,
		"Namespace of the replicas' leases (exec-proxy's own). Each replica keeps a Lease there saying where it is, and asks the "+
			"others for their sessions. Empty: this replica answers for its own sessions only.")
	fs.StringVar(&o.AdvertiseAddress, "peer-advertise-address", o.AdvertiseAddress,
		"Address the other replicas reach this one at, with --secure-port (in a pod: its IP, $(POD_IP)). Required with --peer-namespace.")
	fs.StringVar(&o.CertificateAuthority, "peer-certificate-authority", o.CertificateAuthority,
		"CA bundle that signs the replicas' serving certificates (the APIService's caBundle). Required with --peer-namespace.")
	fs.StringVar(&o.ServerName, "peer-server-name", o.ServerName,
		"Name the replicas' serving certificates are verified for (default: exec-proxy.<peer-namespace>.svc, the name kube-apiserver verifies).")
	fs.StringVar(&o.ReplicaName, "replica-name", o.ReplicaName, "This replica's name: its lease, and execsessions' status.replica. Unique per replica.")
	fs.StringVar(&o.CountsFailurePolicy, "peer-counts-failure-policy", o.CountsFailurePolicy,
		"The session caps (--max-sessions, --max-sessions-per-user, the session policy's) count the other replicas' sessions, asked every second. "+
			"When a replica does not answer while its lease is current: fail-closed counts its sessions as last heard until its lease expires; "+
			"fail-open stops counting them at once. Either way, an expired lease's sessions no longer count.")
}

func (o *PeerOptions) Complete() {
	if o.Namespace != "" && o.ServerName == "" {
		o.ServerName = "exec-proxy." + o.Namespace + ".svc"
	}
}

func (o *PeerOptions) Validate() []error {
	var errs []error
	if o.ReplicaName == "" {
		errs = append(errs, fmt.Errorf("--replica-name must not be empty"))
	}
	if o.CountsFailurePolicy != "fail-closed" && o.CountsFailurePolicy != "fail-open" {
		errs = append(errs, fmt.Errorf("--peer-counts-failure-policy must be fail-closed or fail-open, not %q", o.CountsFailurePolicy))
	}
	if o.Namespace == "" {
		return errs
	}
	if o.AdvertiseAddress == "" {
		errs = append(errs, fmt.Errorf("--peer-advertise-address is required with --peer-namespace"))
	}
	if o.CertificateAuthority == "" {
		errs = append(errs, fmt.Errorf("--peer-certificate-authority is required with --peer-namespace"))
	} else if _, err := os.Stat(o.CertificateAuthority); err != nil {
		errs = append(errs, fmt.Errorf("--peer-certificate-authority: %w", err))
	}
	return errs
}

// PeerConfig returns how to reach the peers, nil without --peer-namespace. Peers are called with
// exec-proxy's own credentials (from its kubeconfig), and verified as kube-apiserver verifies them.
func (o *PeerOptions) PeerConfig(restConfig *rest.Config, port int) (*apiserver.PeerConfig, error) {
	if o.Namespace == "" {
		return nil, nil
	}
	cfg := rest.CopyConfig(restConfig)
	cfg.TLSClientConfig = rest.TLSClientConfig{
		CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, CertData: cfg.CertData, KeyData: cfg.KeyData,
		CAFile: o.CertificateAuthority, ServerName: o.ServerName,
	}
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("peer transport: %w", err)
	}
	upgrade, err := upgradeTransport(cfg)
	if err != nil {
		return nil, fmt.Errorf("peer transport for upgrades: %w", err)
	}
	return &apiserver.PeerConfig{
		Namespace:        o.Namespace,
		Address:          net.JoinHostPort(o.AdvertiseAddress, strconv.Itoa(port)),
		Transport:        transport,
		UpgradeTransport: upgrade,
		CountsFailOpen:   o.CountsFailurePolicy == "fail-open",
	}, nil
}

// upgradeTransport dials peers for upgrades with cfg's TLS, its credentials added to the request
// (as kube-apiserver's node proxy does), since an upgrade's connection is not a round trip.
func upgradeTransport(cfg *rest.Config) (proxy.UpgradeRequestRoundTripper, error) {
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, err
	}
	connection := utilnet.SetTransportDefaults(&http.Transport{TLSClientConfig: tlsConfig})
	wrappers, err := rest.HTTPWrappersForConfig(cfg, proxy.MirrorRequest)
	if err != nil {
		return nil, err
	}
	return proxy.NewUpgradeRequestRoundTripper(connection, wrappers), nil
}
