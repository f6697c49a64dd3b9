package apiserver

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/informers"
	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/peers"
	"github.com/exec-proxy/exec-proxy/pkg/policy"
	"github.com/exec-proxy/exec-proxy/pkg/proxy"
	"github.com/exec-proxy/exec-proxy/pkg/registry/execsession"
	podregistry "github.com/exec-proxy/exec-proxy/pkg/registry/pod"
	"github.com/exec-proxy/exec-proxy/pkg/sessionadmission"
)

// policyReloadPeriod is how often the session policy file is read for changes: an edit is in
// force within it.
const policyReloadPeriod = 2 * time.Second

// expiredLockPeriod is how often each replica deletes expired execlocks. An expired lock stops
// applying at once; this only tidies the list.
const expiredLockPeriod = 30 * time.Second

// ExecProxy is the running server.
type ExecProxy struct {
	GenericAPIServer *genericapiserver.GenericAPIServer
}

// installAPIGroup serves execproxy.dev/v1alpha1 from storage.
func installAPIGroup(s *genericapiserver.GenericAPIServer, storage map[string]rest.Storage) error {
	group := genericapiserver.NewDefaultAPIGroupInfo(api.GroupName, api.Scheme, api.ParameterCodec, api.Codecs)
	group.VersionedResourcesStorageMap[api.SchemeGroupVersion.Version] = storage
	if err := s.InstallAPIGroup(&group); err != nil {
		return fmt.Errorf("installing %s: %w", api.GroupName, err)
	}
	return nil
}

// New builds the server from a completed config.
func (c CompletedConfig) New() (*ExecProxy, error) {
	s, err := c.generic.New("exec-proxy", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, err
	}
	storage := podregistry.NewREST(c.proxier)
	var peerSet execsession.Peers
	var recordingPeers execsession.RecordingPeers
	var attachPeers execsession.AttachPeers
	if c.peers != nil { // a nil *peers.Peers must not become a non-nil interface
		peerSet, recordingPeers, attachPeers = c.peers, c.peers, c.peers
	}
	storage["execsessions"] = execsession.NewREST(c.proxier, c.replica, peerSet)
	var recordingBucket execsession.RecordingBucket
	if c.proxier.Recording.Bucket != nil {
		recordingBucket = c.proxier.Recording.Bucket
	}
	storage["execsessions/recording"] = execsession.NewRecordingREST(c.proxier.Recording.Dir, c.replica, recordingPeers, recordingBucket)
	storage["execsessions/attach"] = execsession.NewAttachREST(c.proxier, c.replica, attachPeers, c.proxier.Audit, c.generic.Authorization.Authorizer)
	if c.locks != nil {
		storage["execlocks"] = c.locks.storage
	}
	if err := installAPIGroup(s, storage); err != nil {
		return nil, err
	}
	if c.tally != nil {
		s.Handler.NonGoRestfulMux.Handle(peers.CountsPath, c.tally)
	}
	proxy.RegisterMetrics()
	policy.RegisterMetrics()
	sessionadmission.RegisterMetrics()
	peers.RegisterMetrics()

	// Readiness waits for this hook: sessions need the pod and node caches (and the locks').
	factories := []informers.SharedInformerFactory{c.informers, c.peerInformers, c.admissionInformers}
	if c.locks != nil {
		factories = append(factories, c.locks.informers)
	}
	s.AddPostStartHookOrDie("exec-proxy-informers", func(hc genericapiserver.PostStartHookContext) error {
		for _, factory := range factories {
			if factory == nil {
				continue
			}
			factory.Start(hc.Done())
			for typ, ok := range factory.WaitForCacheSync(hc.Done()) {
				if !ok {
					return fmt.Errorf("cache for %v did not sync", typ)
				}
			}
		}
		return nil
	})
	auditStop := make(chan struct{})
	s.AddPostStartHookOrDie("exec-proxy-sessions", func(hc genericapiserver.PostStartHookContext) error {
		if err := c.audit.Run(auditStop); err != nil {
			return err
		}
		c.transport.Run(hc)
		go c.proxier.Run(hc)
		if c.proxier.Policy != nil {
			go c.proxier.Policy.Run(hc, policyReloadPeriod)
		}
		if c.announcer != nil {
			c.announcer.Start(hc)
		}
		if c.tally != nil {
			go c.tally.Run(hc)
		}
		if c.locks != nil {
			go c.locks.locks.Run(hc, expiredLockPeriod)
		}
		if rec := c.proxier.Recording; rec.Bucket != nil && rec.Retention > 0 {
			go rec.Bucket.Retain(hc, rec.Retention)
		}
		return nil
	})
	// Drain before the listener closes: new sessions get 503, live ones get the grace period.
	s.AddPreShutdownHookOrDie("exec-proxy-drain", func() error {
		ended := c.proxier.Drain(context.Background(), c.shutdownGracePeriod)
		klog.InfoS("Sessions drained", "endedByShutdown", ended)
		if c.announcer != nil {
			// Peers asked this replica for its sessions while they drained; now there are none.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c.announcer.Withdraw(ctx)
			cancel()
		}
		// Every session has its end record now: deliver what the backends still hold.
		close(auditStop)
		c.audit.Shutdown()
		return nil
	})
	return &ExecProxy{GenericAPIServer: s}, nil
}
