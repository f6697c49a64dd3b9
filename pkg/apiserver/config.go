// Package apiserver assembles exec-proxy: the generic API server, its API group, the kube route,
// the informers and the session proxy.
package apiserver

import (
	"fmt"
	"net/http"
	"time"

	utilproxy "k8s.io/apimachinery/pkg/util/proxy"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericfilters "k8s.io/apiserver/pkg/server/filters"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	openapicommon "k8s.io/kube-openapi/pkg/common"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/authz"
	"github.com/exec-proxy/exec-proxy/pkg/kuberoute"
	"github.com/exec-proxy/exec-proxy/pkg/locks"
	"github.com/exec-proxy/exec-proxy/pkg/nodeconn"
	"github.com/exec-proxy/exec-proxy/pkg/peers"
	"github.com/exec-proxy/exec-proxy/pkg/policy"
	"github.com/exec-proxy/exec-proxy/pkg/proxy"
	"github.com/exec-proxy/exec-proxy/pkg/recording"
	"github.com/exec-proxy/exec-proxy/pkg/registry/execlock"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionadmission"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// Config is everything exec-proxy needs to be built.
type Config struct {
	Generic               *genericapiserver.Config
	Client                kubernetes.Interface
	Kubelet               nodeconn.TransportConfig
	PreferredAddressTypes []string
	DefaultKubeletPort    int
	Limits                proxy.Limits
	ShutdownGracePeriod   time.Duration
	// Audit writes session records; nil when none are configured.
	Audit     *sessionaudit.Auditor
	Recording recording.Config
	// Policy is the session policy; nil: none.
	Policy *policy.Source
	// Admission is how the cluster's admission is run; nil: sessions and exec-proxy's own API go
	// through none (--admission=none).
	Admission *AdmissionConfig
	// Replica names this exec-proxy in execsessions.
	Replica string
	// Peers finds the other replicas; nil when this one answers for itself only.
	Peers *PeerConfig
	// LockNamespace holds the execlocks (as ConfigMaps); empty: no locks are served or enforced.
	LockNamespace string
	// PassThrough sends the route's requests that are not sessions to kube-apiserver as the user;
	// nil: the route serves only sessions and the reads kubectl makes for them.
	PassThrough *kuberoute.PassThrough
}

// AdmissionConfig is what the cluster's admission plugins need beyond the server's config.
type AdmissionConfig struct {
	// Dynamic reads the admission policies' params, which may be of any kind.
	Dynamic dynamic.Interface
	// ConfigFile is kube-apiserver's --admission-control-config-file format; empty: none.
	ConfigFile string
}

// PeerConfig says where the replicas' leases are and how to reach the other replicas.
type PeerConfig struct {
	// Namespace holds the leases.
	Namespace string
	// Address is where the others reach this replica (host:port).
	Address string
	// Transport reaches peers; UpgradeTransport too, for upgrades.
	Transport        http.RoundTripper
	UpgradeTransport utilproxy.UpgradeRequestRoundTripper
	// CountsFailOpen stops the caps counting a peer's sessions when it does not answer; otherwise
	// they count as last heard until its lease expires.
	CountsFailOpen bool
}

type completedConfig struct {
	generic             genericapiserver.CompletedConfig
	informers           informers.SharedInformerFactory
	transport           *nodeconn.Transport
	proxier             *proxy.Proxier
	audit               *sessionaudit.Auditor
	route               *kuberoute.Handler
	shutdownGracePeriod time.Duration
	replica             string
	peers               *peers.Peers // nil: none
	announcer           *peers.Announcer
	tally               *peers.Tally // nil: no peers
	peerInformers       informers.SharedInformerFactory
	admissionInformers  informers.SharedInformerFactory // nil: no admission
	locks               *lockParts                      // nil: no locks
}

// lockParts serve and enforce the execlocks.
type lockParts struct {
	locks     *locks.Locks
	informers informers.SharedInformerFactory
	storage   *execlock.REST
}

// CompletedConfig can only be made by Complete.
type CompletedConfig struct{ *completedConfig }

// longRunningVerbs and longRunningSubresources are never cut by the request timeout nor counted as
// in-flight requests: the sessions, and kube-apiserver's own long-running requests (watch, log,
// proxy), which the route passes through.
var (
	longRunningVerbs        = sets.NewString("watch", "proxy")
	longRunningSubresources = sets.NewString(append(session.Subresources(), "log", "proxy")...)
	// LongRunning tells the long-running requests, as the handler chain parsed them.
	LongRunning = genericfilters.BasicLongRunningRequestCheck(longRunningVerbs, longRunningSubresources)
)

// Complete fills in the defaults and builds the parts. It starts nothing.
func (c *Config) Complete() (CompletedConfig, error) {
	transport, err := nodeconn.NewTransport(c.Kubelet)
	if err != nil {
		return CompletedConfig{}, fmt.Errorf("kubelet transport: %w", err)
	}
	factory := informers.NewSharedInformerFactory(c.Client, 0)
	resolver := &nodeconn.Resolver{
		Pods:                  factory.Core().V1().Pods().Lister(),
		Nodes:                 factory.Core().V1().Nodes().Lister(),
		PreferredAddressTypes: c.PreferredAddressTypes,
		DefaultPort:           c.DefaultKubeletPort,
	}
	proxier := proxy.New(resolver, transport, c.Limits)
	proxier.Audit, proxier.Recording, proxier.Policy = c.Audit, c.Recording, c.Policy
	route := &kuberoute.Handler{Pods: resolver, Objects: kuberoute.ClientObjects{Client: c.Client},
		Client: kuberoute.ClientPods{Client: c.Client}, Sessions: proxier, Audit: c.Audit}
	peerSet, announcer, peerInformers := c.peers()
	identity := &peers.Identity{Reviews: c.Client.AuthenticationV1().SelfSubjectReviews()}
	var tally *peers.Tally
	if peerSet != nil {
		tally = &peers.Tally{Peers: peerSet, Self: identity, Local: proxier.SessionCounts, FailOpen: c.Peers.CountsFailOpen}
		proxier.CountElsewhere(tally)
	}

	g := c.Generic
	var admissionInformers informers.SharedInformerFactory
	if c.Admission != nil {
		admissionInformers = informers.NewSharedInformerFactoryWithOptions(c.Client, 0, sessionadmission.InformerOptions())
		chain, err := sessionadmission.NewChain(g, admissionInformers, c.Client, c.Admission.Dynamic, g.FeatureGate, c.Admission.ConfigFile)
		if err != nil {
			return CompletedConfig{}, err
		}
		if proxier.Admission, err = sessionadmission.New(chain); err != nil {
			return CompletedConfig{}, err
		}
	}
	locked, err := c.lockParts(proxier)
	if err != nil {
		return CompletedConfig{}, err
	}
	ephemeral := ephemeralCheck{policy: c.Policy, admission: proxier.Admission}
	if locked != nil { // a nil *locks.Locks must not become a non-nil proxy.Locks
		proxier.Locks, ephemeral.locks = locked.locks, locked.locks
	}
	route.Ephemeral = ephemeral
	if c.PassThrough != nil { // a nil *PassThrough must not become a non-nil http.Handler
		route.PassThrough = c.PassThrough
	}
	configureChain(g, c.Audit, route.PassThrough != nil, func(apiHandler http.Handler) http.Handler {
		return route.Wrap(peers.WithRequests(apiHandler, identity))
	})
	return CompletedConfig{&completedConfig{
		generic:             g.Complete(factory),
		informers:           factory,
		transport:           transport,
		proxier:             proxier,
		audit:               c.Audit,
		route:               route,
		shutdownGracePeriod: c.ShutdownGracePeriod,
		replica:             c.Replica,
		peers:               peerSet,
		announcer:           announcer,
		tally:               tally,
		peerInformers:       peerInformers,
		admissionInformers:  admissionInformers,
		locks:               locked,
	}}, nil
}

// lockParts builds the execlocks' storage and their enforcement on proxier's sessions.
func (c *Config) lockParts(proxier *proxy.Proxier) (*lockParts, error) {
	if c.LockNamespace == "" {
		return nil, nil
	}
	factory := locks.InformerFactory(c.Client, c.LockNamespace)
	l, err := locks.New(c.Client, c.LockNamespace, factory, proxier)
	if err != nil {
		return nil, err
	}
	return &lockParts{locks: l, informers: factory, storage: execlock.NewREST(c.Client, c.LockNamespace)}, nil
}

// configureChain makes g's handler chain exec-proxy's: route paths parsed as the core paths they
// stand for, core RBAC, and, outermost, the session audit's attempts, opened from the very
// RequestInfo the chain then authorizes and serves. inner wraps the API handler (the route).
func configureChain(g *genericapiserver.Config, audit *sessionaudit.Auditor, passThrough bool, inner func(http.Handler) http.Handler) {
	g.LongRunningFunc = LongRunning
	resolver := kuberoute.RequestInfoResolver{Delegate: genericapiserver.NewRequestInfoResolver(g)}
	g.RequestInfoResolver = sessionaudit.Resolved{Delegate: resolver}
	rbac := authz.CoreRBAC{Delegate: g.Authorization.Authorizer}
	if passThrough {
		rbac.PassedThrough = kuberoute.PassedThrough
	}
	g.Authorization.Authorizer = rbac
	if g.Authentication.Authenticator != nil {
		g.Authentication.Authenticator = authz.Authenticated{Delegate: g.Authentication.Authenticator}
	}
	noOpenAPI(g)
	g.BuildHandlerChainFunc = func(apiHandler http.Handler, gc *genericapiserver.Config) http.Handler {
		// Outermost, so that refusals by authentication and authorization are recorded too.
		chain := genericapiserver.DefaultBuildHandlerChain(inner(apiHandler), gc)
		return sessionaudit.WithAttempts(kuberoute.WithRouteRequests(chain), audit, resolver)
	}
}

// peers builds the peer set over a cache of the replicas' leases, and this replica's own lease.
func (c *Config) peers() (*peers.Peers, *peers.Announcer, informers.SharedInformerFactory) {
	if c.Peers == nil {
		return nil, nil, nil
	}
	selector := peers.LabelReplica + "=true"
	factory := informers.NewSharedInformerFactoryWithOptions(c.Client, 0, informers.WithNamespace(c.Peers.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	set := &peers.Peers{
		Leases:           factory.Coordination().V1().Leases().Lister().Leases(c.Peers.Namespace),
		Self:             c.Replica,
		Client:           &http.Client{Transport: c.Peers.Transport},
		UpgradeTransport: c.Peers.UpgradeTransport,
	}
	announcer := &peers.Announcer{Client: c.Client, Namespace: c.Peers.Namespace, Name: c.Replica, Address: c.Peers.Address}
	return set, announcer, factory
}

// noOpenAPI satisfies the generic server, which builds server-side-apply models for every installed
// group from OpenAPI: exec-proxy has connect subresources only (nothing to apply), so its paths are
// left out of the models and no OpenAPI document is served.
func noOpenAPI(g *genericapiserver.Config) {
	none := func(openapicommon.ReferenceCallback) map[string]openapicommon.OpenAPIDefinition { return nil }
	g.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(none, openapinamer.NewDefinitionNamer(api.Scheme))
	g.OpenAPIV3Config.IgnorePrefixes = []string{"/apis/" + api.GroupName + "/"}
	g.SkipOpenAPIInstallation = true
}
