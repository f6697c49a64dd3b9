package peers

import (
	"context"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-helpers/apimachinery/lease"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

const (
	// LabelReplica marks the leases of exec-proxy's replicas.
	LabelReplica = "execproxy.dev/replica"
	// AnnotationAddress is where a replica is reached (host:port).
	AnnotationAddress = "execproxy.dev/address"

	leaseDuration = 30 * time.Second
	renewInterval = 10 * time.Second
)

// Announcer keeps this replica's lease: its name and where peers reach it.
type Announcer struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string
	Address   string

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Start renews the lease until ctx ends or Withdraw.
func (a *Announcer) Start(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ctx, a.cancel = context.WithCancel(ctx)
	a.done = make(chan struct{})
	go func() {
		defer close(a.done)
		a.run(ctx)
	}()
}

func (a *Announcer) run(ctx context.Context) {
	annotate := func(l *coordinationv1.Lease) error {
		if l.Labels == nil {
			l.Labels = map[string]string{}
		}
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Labels[LabelReplica] = "true"
		l.Annotations[AnnotationAddress] = a.Address
		return nil
	}
	onFailure := func() {
		klog.FromContext(ctx).Info("Could not renew this replica's lease: peers may stop asking it", "lease", klog.KRef(a.Namespace, a.Name))
	}
	lease.NewController(clock.RealClock{}, a.Client, a.Name, int32(leaseDuration/time.Second), onFailure,
		renewInterval, a.Name, a.Namespace, annotate).Run(ctx)
}

// Withdraw stops renewing and deletes the lease, so that peers stop asking this replica at once.
func (a *Announcer) Withdraw(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel != nil {
		a.cancel()
		<-a.done // or the renewal might create the lease again
	}
	err := a.Client.CoordinationV1().Leases(a.Namespace).Delete(ctx, a.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		klog.FromContext(ctx).Error(err, "Could not delete this replica's lease; it expires by itself", "lease", klog.KRef(a.Namespace, a.Name))
	}
}
