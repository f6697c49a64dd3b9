// Package options holds exec-proxy's command-line options, in named sections as in --help.
package options

import (
	"context"
	"fmt"
	"net"
	"time"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	cliflag "k8s.io/component-base/cli/flag"
	basecompatibility "k8s.io/component-base/compatibility"
	"k8s.io/component-base/featuregate"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json
	baseversion "k8s.io/component-base/version"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/apiserver"
	"github.com/exec-proxy/exec-proxy/pkg/wire/tlsrecord"
)

// Options are all of exec-proxy's flags.
type Options struct {
	SecureServing  *genericoptions.SecureServingOptionsWithLoopback
	Authentication *genericoptions.DelegatingAuthenticationOptions
	Authorization  *genericoptions.DelegatingAuthorizationOptions
	Logs           *logsapi.LoggingConfiguration
	Kubelet        *KubeletOptions
	Limits         *LimitOptions
	Audit          *AuditOptions
	Policy         *PolicyOptions
	Admission      *AdmissionOptions
	Peers          *PeerOptions
	Locks          *LockOptions
	Route          *RouteOptions
	Debugging      *DebuggingOptions

	Kubeconfig          string
	ShutdownGracePeriod time.Duration
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	o := &Options{
		SecureServing:       genericoptions.NewSecureServingOptions().WithLoopback(),
		Authentication:      genericoptions.NewDelegatingAuthenticationOptions(),
		Authorization:       genericoptions.NewDelegatingAuthorizationOptions(),
		Logs:                logsapi.NewLoggingConfiguration(),
		Kubelet:             NewKubeletOptions(),
		Limits:              NewLimitOptions(),
		Audit:               NewAuditOptions(),
		Policy:              NewPolicyOptions(),
		Admission:           NewAdmissionOptions(),
		Peers:               NewPeerOptions(),
		Locks:               &LockOptions{},
		Route:               NewRouteOptions(),
		Debugging:           &DebuggingOptions{},
		ShutdownGracePeriod: 30 * time.Second,
	}
	o.SecureServing.BindPort = 8443
	o.SecureServing.ServerCert.PairName = "exec-proxy"
	return o
}

// Flags returns the flags in sections.
func (o *Options) Flags() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets
	o.SecureServing.AddFlags(fss.FlagSet("secure serving"))
	o.Authentication.AddFlags(fss.FlagSet("authentication"))
	o.Authorization.AddFlags(fss.FlagSet("authorization"))
	o.Kubelet.AddFlags(fss.FlagSet("kubelet client"))
	o.Limits.AddFlags(fss.FlagSet("session limits"))
	o.Audit.AddFlags(fss.FlagSet("session audit"))
	o.Policy.AddFlags(fss.FlagSet("session policy"))
	o.Admission.AddFlags(fss.FlagSet("admission"))
	o.Peers.AddFlags(fss.FlagSet("replicas"))
	o.Locks.AddFlags(fss.FlagSet("locks"))
	o.Route.AddFlags(fss.FlagSet("route"))
	logsapi.AddFlags(o.Logs, fss.FlagSet("logging"))
	o.Debugging.AddFlags(fss.FlagSet("debugging"))
	fs := fss.FlagSet("generic")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Kubeconfig of the cluster (also used for authentication and authorization unless given apart). In-cluster config when empty.")
	fs.DurationVar(&o.ShutdownGracePeriod, "shutdown-grace-period", o.ShutdownGracePeriod,
		"On SIGTERM, how long live sessions may go on before they are ended; new sessions are refused at once.")
	return fss
}

// Complete fills in what follows from other flags.
func (o *Options) Complete() error {
	if o.Kubeconfig != "" {
		if o.Authentication.RemoteKubeConfigFile == "" {
			o.Authentication.RemoteKubeConfigFile = o.Kubeconfig
		}
		if o.Authorization.RemoteKubeConfigFile == "" {
			o.Authorization.RemoteKubeConfigFile = o.Kubeconfig
		}
	}
	o.Kubelet.Complete()
	o.Peers.Complete()
	o.Locks.Complete(o.Peers.Namespace)
	return o.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{net.ParseIP("127.0.0.1")})
}

// Validate returns every problem at once.
func (o *Options) Validate() error {
	var errs []error
	errs = append(errs, o.SecureServing.Validate()...)
	errs = append(errs, o.Authentication.Validate()...)
	errs = append(errs, o.Authorization.Validate()...)
	errs = append(errs, o.Kubelet.Validate()...)
	errs = append(errs, o.Limits.Validate()...)
	errs = append(errs, o.Audit.Validate()...)
	errs = append(errs, o.Audit.ValidateRetention(o.Limits.MaxSessionDuration)...)
	errs = append(errs, o.Policy.Validate(o.Audit.Recording.Dir)...)
	errs = append(errs, o.Admission.Validate()...)
	errs = append(errs, o.Peers.Validate()...)
	errs = append(errs, o.Route.Validate()...)
	if o.ShutdownGracePeriod < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-grace-period must not be negative"))
	}
	return utilerrors.NewAggregate(errs)
}

// ApplyLogging validates and applies the logging flags; call it before anything logs.
func (o *Options) ApplyLogging(gate featuregate.FeatureGate) error {
	return logsapi.ValidateAndApply(o.Logs, gate)
}

// ServerConfig turns the options into the server's config.
func (o *Options) ServerConfig() (*apiserver.Config, error) {
	restConfig, err := o.restConfig()
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	var admission *apiserver.AdmissionConfig
	if o.Admission.Mode == AdmissionCluster {
		// The admission policies' params are any kind of object.
		dynamicClient, err := dynamic.NewForConfig(restConfig)
		if err != nil {
			return nil, fmt.Errorf("dynamic client: %w", err)
		}
		admission = &apiserver.AdmissionConfig{Dynamic: dynamicClient, ConfigFile: o.Admission.ConfigFile}
	}
	generic := genericapiserver.NewConfig(api.Codecs)
	if err := o.SecureServing.ApplyTo(&generic.SecureServing, &generic.LoopbackClientConfig); err != nil {
		return nil, fmt.Errorf("secure serving: %w", err)
	}
	// Sessions write the TLS records of each write in one system call (see tlsrecord.Listener).
	generic.SecureServing.Listener = tlsrecord.Listener{Listener: generic.SecureServing.Listener}
	if err := o.Authentication.ApplyTo(&generic.Authentication, generic.SecureServing, nil); err != nil {
		return nil, fmt.Errorf("authentication: %w", err)
	}
	if err := o.Authorization.ApplyTo(&generic.Authorization); err != nil {
		return nil, fmt.Errorf("authorization: %w", err)
	}
	// exec-proxy serves the core API's shapes, so it reports the Kubernetes version it was built against.
	generic.EffectiveVersion = basecompatibility.NewEffectiveVersionFromString(baseversion.DefaultKubeBinaryVersion, "", "")
	generic.FeatureGate = utilfeature.DefaultFeatureGate
	// exec-proxy stores nothing and serves no OpenAPI. Its admission (--admission) is built with
	// its informers (apiserver.Config.Complete).
	generic.EnableIndex = false
	o.Debugging.ApplyTo(generic)
	auditor, err := o.Audit.Auditor()
	if err != nil {
		return nil, err
	}
	policy, err := o.Policy.Source(o.Audit.Recording.Dir)
	if err != nil {
		return nil, err
	}
	peers, err := o.Peers.PeerConfig(restConfig, o.SecureServing.BindPort)
	if err != nil {
		return nil, err
	}
	passThrough, err := o.Route.ToPassThrough(restConfig)
	if err != nil {
		return nil, err
	}
	recordingConfig, err := o.Audit.RecordingConfig(context.Background())
	if err != nil {
		return nil, err
	}
	return &apiserver.Config{
		Replica:               o.Peers.ReplicaName,
		Peers:                 peers,
		LockNamespace:         o.Locks.Namespace,
		PassThrough:           passThrough,
		Audit:                 auditor,
		Recording:             recordingConfig,
		Policy:                policy,
		Admission:             admission,
		Generic:               generic,
		Client:                client,
		Kubelet:               o.Kubelet.TransportConfig(),
		PreferredAddressTypes: o.Kubelet.PreferredAddressTypes,
		DefaultKubeletPort:    o.Kubelet.Port,
		Limits:                o.Limits.ToLimits(),
		ShutdownGracePeriod:   o.ShutdownGracePeriod,
	}, nil
}

func (o *Options) restConfig() (*rest.Config, error) {
	var (
		config *rest.Config
		err    error
	)
	if o.Kubeconfig != "" {
		config, err = clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	} else {
		config, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w (give --kubeconfig when not running in a cluster)", err)
	}
	config.UserAgent = "exec-proxy"
	return config, nil
}
