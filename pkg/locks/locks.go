package locks

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/proxy"
)

// Sessions are this replica's live sessions; *proxy.Proxier in production.
type Sessions interface {
	Sessions() []*proxy.Session
}

// Locks are the locks as this replica's informer has them.
type Locks struct {
	namespace string
	client    kubernetes.Interface
	lister    corelisters.ConfigMapNamespaceLister
	synced    cache.InformerSynced
	sessions  Sessions
	now       func() time.Time
}

// InformerFactory is the factory whose ConfigMap informer New reads: namespace's ConfigMaps that
// hold locks only. Start it with the server's other informers.
func InformerFactory(client kubernetes.Interface, namespace string) informers.SharedInformerFactory {
	return informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = LabelLock + "=true" }))
}

// New returns the locks of namespace, from factory's ConfigMap informer, and ends the sessions a
// new or changed lock applies to. client deletes expired locks (Run).
func New(client kubernetes.Interface, namespace string, factory informers.SharedInformerFactory, sessions Sessions) (*Locks, error) {
	informer := factory.Core().V1().ConfigMaps()
	l := &Locks{namespace: namespace, client: client, lister: informer.Lister().ConfigMaps(namespace),
		synced: informer.Informer().HasSynced, sessions: sessions, now: time.Now}
	// The cache holds the lock before the handler runs, so a session that Check let in before then
	// is among Sessions() here, and one added after is refused by Check (proxy checks after adding).
	_, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { l.changed(obj) },
		UpdateFunc: func(_, obj interface{}) { l.changed(obj) },
	})
	if err != nil {
		return nil, fmt.Errorf("watching execlocks: %w", err)
	}
	return l, nil
}

// Locked returns the lock that applies to user, a member of groups, at now, or nil. The user's own
// lock comes first, then the groups' in order. Until the informer has synced, it fails closed: a
// replica that cannot tell whether a user is locked does not let them in.
func (l *Locks) Locked(user string, groups []string, now time.Time) (*api.ExecLock, error) {
	if !l.synced() {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf(
			"exec-proxy has not read the execlocks yet (ConfigMaps labelled %s in namespace %s), and refuses sessions until it has", LabelLock, l.namespace))
	}
	names := []string{api.LockName(user, "")}
	for _, g := range groups {
		names = append(names, api.LockName("", g))
	}
	for _, name := range names {
		cm, err := l.lister.Get(ConfigMapName(name))
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading execlock %q: %w", name, err)
		}
		lock, err := FromConfigMap(cm)
		if err != nil {
			return nil, err
		}
		if Applies(lock, user, groups, now) {
			return lock, nil
		}
	}
	return nil, nil
}

// Check refuses user's session with the Status of the lock that applies (see Refusal), or with a
// 503 when the locks cannot be read.
func (l *Locks) Check(user string, groups []string) error {
	lock, err := l.Locked(user, groups, l.now())
	if err != nil {
		var st apierrors.APIStatus
		if errors.As(err, &st) {
			return err
		}
		return apierrors.NewServiceUnavailable("exec-proxy cannot tell whether the user is locked: " + err.Error())
	}
	if lock != nil {
		return Refusal(lock, user)
	}
	return nil
}

// changed ends this replica's live sessions that the lock in obj applies to.
func (l *Locks) changed(obj interface{}) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return
	}
	lock, err := FromConfigMap(cm)
	if err != nil {
		klog.ErrorS(err, "Ignoring a ConfigMap labelled as an execlock", "configMap", klog.KObj(cm))
		return
	}
	l.End(lock)
}

// End ends the live sessions of this replica that lock applies to, and returns how many.
func (l *Locks) End(lock *api.ExecLock) int {
	if l.sessions == nil {
		return 0
	}
	now, ended := l.now(), 0
	for _, s := range l.sessions.Sessions() {
		if !Applies(lock, s.User, s.Groups, now) {
			continue
		}
		klog.InfoS("Session ended by a lock", "session", s.ID, "pod", klog.KRef(s.Namespace, s.Pod), "user", s.User, "execlock", lock.Name)
		s.Kill(EndReason(lock))
		ended++
	}
	return ended
}

// Run deletes expired locks every period until ctx ends. Every replica runs it: a lock deleted by
// another, or renewed since it was read (its resourceVersion changed), is left alone.
func (l *Locks) Run(ctx context.Context, period time.Duration) {
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			l.deleteExpired(ctx, l.now())
		}
	}
}

func (l *Locks) deleteExpired(ctx context.Context, now time.Time) {
	cms, err := l.lister.List(labels.Everything())
	if err != nil {
		klog.ErrorS(err, "Listing execlocks")
		return
	}
	for _, cm := range cms {
		lock, err := FromConfigMap(cm)
		if err != nil || !Expired(lock, now) {
			continue
		}
		err = l.client.CoreV1().ConfigMaps(l.namespace).Delete(ctx, cm.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &cm.UID, ResourceVersion: &cm.ResourceVersion}})
		switch {
		case err == nil:
			klog.InfoS("Expired execlock deleted", "execlock", lock.Name, "expired", lock.Status.ExpirationTimestamp)
		case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		default:
			klog.ErrorS(err, "Deleting an expired execlock", "execlock", lock.Name)
		}
	}
}
