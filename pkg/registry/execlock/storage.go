// Package execlock serves execproxy.dev/v1alpha1 execlocks: the user locks, stored as ConfigMaps in
// exec-proxy's own namespace with exec-proxy's identity (package locks). RBAC on execlocks decides
// who may lock; each replica's informer enforces them.
package execlock

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/locks"
)

// maxReason bounds a lock's reason, which every refusal and end record repeats.
const maxReason = 1024

// REST is the execlocks resource over the ConfigMaps of one namespace.
type REST struct {
	configMaps corev1client.ConfigMapInterface
	namespace  string
	now        func() time.Time
}

var (
	_ rest.Storage              = &REST{}
	_ rest.Scoper               = &REST{}
	_ rest.Creater              = &REST{}
	_ rest.Lister               = &REST{}
	_ rest.Getter               = &REST{}
	_ rest.GracefulDeleter      = &REST{}
	_ rest.SingularNameProvider = &REST{}
)

// NewREST returns the resource over the locks in namespace, written with client.
func NewREST(client kubernetes.Interface, namespace string) *REST {
	return &REST{configMaps: client.CoreV1().ConfigMaps(namespace), namespace: namespace, now: time.Now}
}

func (*REST) New() runtime.Object     { return &api.ExecLock{} }
func (*REST) NewList() runtime.Object { return &api.ExecLockList{} }
func (*REST) Destroy()                {}
func (*REST) NamespaceScoped() bool   { return false }
func (*REST) GetSingularName() string { return "execlock" }

// Create locks the spec's user or group. The lock is named by its subject (api.LockName); a lock
// of a subject already locked renews it: the new reason and locker, and the later expiry of the
// two (none is the latest), so a second lock never shortens the first. The locker and the time
// are the request's, whatever the body says.
func (r *REST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, opts *metav1.CreateOptions) (runtime.Object, error) {
	lock, ok := obj.(*api.ExecLock)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not an ExecLock: %T", obj))
	}
	if lock.Name == "" {
		lock.Name = api.LockName(lock.Spec.User, lock.Spec.Group)
	}
	if errs := validate(lock); len(errs) > 0 {
		return nil, apierrors.NewInvalid(api.SchemeGroupVersion.WithKind("ExecLock").GroupKind(), lock.Name, errs)
	}
	now := r.now()
	lock.Status = api.ExecLockStatus{LockedBy: locker(ctx), LockedAt: metav1.NewTime(now)}
	if s := lock.Spec.ExpirationSeconds; s != nil {
		lock.Status.ExpirationTimestamp = &metav1.Time{Time: now.Add(time.Duration(*s) * time.Second)}
	}
	if createValidation != nil {
		if err := createValidation(ctx, lock); err != nil {
			return nil, err
		}
	}
	if opts != nil && len(opts.DryRun) > 0 {
		return lock, nil // as it would be created; a renewal's expiry is not worked out
	}
	var stored *api.ExecLock
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var err error
		stored, err = r.put(ctx, lock)
		return err
	})
	if err != nil {
		return nil, err
	}
	expires := "never"
	if t := stored.Status.ExpirationTimestamp; t != nil {
		expires = t.UTC().Format(time.RFC3339)
	}
	klog.FromContext(ctx).Info("Lock set", "execlock", stored.Name, "by", stored.Status.LockedBy, "reason", stored.Spec.Reason,
		"expires", expires)
	return stored, nil
}

// put creates lock's ConfigMap, or renews the lock an existing one holds.
func (r *REST) put(ctx context.Context, lock *api.ExecLock) (*api.ExecLock, error) {
	cm, err := r.configMaps.Get(ctx, locks.ConfigMapName(lock.Name), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cm, err := locks.ToConfigMap(lock, r.namespace)
		if err != nil {
			return nil, err
		}
		created, err := r.configMaps.Create(ctx, cm, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil, apierrors.NewConflict(api.Resource("execlocks"), lock.Name, err) // retried as a renewal
		}
		return r.decode(created, err)
	case err != nil:
		return nil, r.storageError(lock.Name, err)
	}
	old, err := locks.FromConfigMap(cm)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	renewed := lock.DeepCopyObject().(*api.ExecLock)
	renewed.ResourceVersion = cm.ResourceVersion
	if !locks.Expired(old, r.now()) && outlasts(old.Status.ExpirationTimestamp, renewed.Status.ExpirationTimestamp) {
		renewed.Status.ExpirationTimestamp = old.Status.ExpirationTimestamp.DeepCopy()
	}
	next, err := locks.ToConfigMap(renewed, r.namespace)
	if err != nil {
		return nil, err
	}
	return r.decode(r.configMaps.Update(ctx, next, metav1.UpdateOptions{}))
}

// outlasts reports whether expiry a comes after expiry b; nil is never.
func outlasts(a, b *metav1.Time) bool {
	switch {
	case a == nil:
		return b != nil
	case b == nil:
		return false
	}
	return a.After(b.Time)
}

// Get returns the lock, expired or not (until it is deleted).
func (r *REST) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	cm, err := r.configMaps.Get(ctx, locks.ConfigMapName(name), metav1.GetOptions{})
	if err != nil {
		return nil, r.storageError(name, err)
	}
	return r.decode(cm, nil)
}

// List returns every lock, from kube-apiserver (not this replica's cache).
func (r *REST) List(ctx context.Context, _ *metainternalversion.ListOptions) (runtime.Object, error) {
	cms, err := r.configMaps.List(ctx, metav1.ListOptions{LabelSelector: locks.LabelLock + "=true"})
	if err != nil {
		return nil, fmt.Errorf("listing execlocks: %w", err)
	}
	list := &api.ExecLockList{Items: []api.ExecLock{}}
	list.ResourceVersion = cms.ResourceVersion
	for i := range cms.Items {
		lock, err := locks.FromConfigMap(&cms.Items[i])
		if err != nil {
			klog.FromContext(ctx).Error(err, "Skipping a ConfigMap labelled as an execlock")
			continue
		}
		list.Items = append(list.Items, *lock)
	}
	return list, nil
}

// Delete removes the lock: the user's sessions are let in again.
func (r *REST) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, opts *metav1.DeleteOptions) (runtime.Object, bool, error) {
	obj, err := r.Get(ctx, name, nil)
	if err != nil {
		return nil, false, err
	}
	if deleteValidation != nil {
		if err := deleteValidation(ctx, obj); err != nil {
			return nil, false, err
		}
	}
	if opts != nil && len(opts.DryRun) > 0 {
		return obj, true, nil
	}
	if err := r.configMaps.Delete(ctx, locks.ConfigMapName(name), metav1.DeleteOptions{}); err != nil {
		return nil, false, r.storageError(name, err)
	}
	klog.FromContext(ctx).Info("Lock removed", "execlock", name, "by", locker(ctx))
	return obj, true, nil
}

func (r *REST) decode(cm *corev1.ConfigMap, err error) (*api.ExecLock, error) {
	if err != nil {
		return nil, r.storageError("", err)
	}
	lock, err := locks.FromConfigMap(cm)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return lock, nil
}

// storageError is err of the ConfigMaps as the execlocks' own: NotFound and Conflict name the lock.
func (r *REST) storageError(name string, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return apierrors.NewNotFound(api.Resource("execlocks"), name)
	case apierrors.IsConflict(err):
		return apierrors.NewConflict(api.Resource("execlocks"), name, err)
	}
	return apierrors.NewInternalError(fmt.Errorf("execlocks are stored as ConfigMaps in namespace %s: %w", r.namespace, err))
}

// locker is who sets or removes a lock: the request's user.
func locker(ctx context.Context) string {
	if u, ok := request.UserFrom(ctx); ok {
		return u.GetName()
	}
	return "unknown"
}

func validate(l *api.ExecLock) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if (l.Spec.User == "") == (l.Spec.Group == "") {
		errs = append(errs, field.Required(spec.Child("user"), "exactly one of spec.user and spec.group"))
	}
	if want := api.LockName(l.Spec.User, l.Spec.Group); l.Name != want {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), l.Name, "must be "+want+" (user-NAME or group-NAME, or empty)"))
	}
	for _, msg := range path.IsValidPathSegmentName(l.Name) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), l.Name, msg))
	}
	if len(l.Spec.Reason) > maxReason {
		errs = append(errs, field.TooLong(spec.Child("reason"), "", maxReason))
	}
	if s := l.Spec.ExpirationSeconds; s != nil && *s <= 0 {
		errs = append(errs, field.Invalid(spec.Child("expirationSeconds"), *s, "must be positive; omit it for a lock until unlocked"))
	}
	return errs
}

var columns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: "user-NAME or group-NAME."},
	{Name: "User", Type: "string"},
	{Name: "Group", Type: "string"},
	{Name: "Reason", Type: "string"},
	{Name: "Locked By", Type: "string"},
	{Name: "Age", Type: "string"},
	{Name: "Expires", Type: "string", Description: "When the lock stops applying; <none>: when it is deleted."},
}

// ConvertToTable renders locks for kubectl get.
func (r *REST) ConvertToTable(_ context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	var items []api.ExecLock
	switch o := obj.(type) {
	case *api.ExecLock:
		items = []api.ExecLock{*o}
	case *api.ExecLockList:
		items = o.Items
	default:
		return nil, fmt.Errorf("cannot show %T as a table of execlocks", obj)
	}
	now := r.now()
	table := &metav1.Table{ColumnDefinitions: columns}
	for i := range items {
		l := &items[i]
		expires := "<none>"
		if t := l.Status.ExpirationTimestamp; t != nil {
			expires = "in " + duration.HumanDuration(t.Sub(now))
			if locks.Expired(l, now) {
				expires = "expired"
			}
		}
		table.Rows = append(table.Rows, metav1.TableRow{
			Cells:  []interface{}{l.Name, l.Spec.User, l.Spec.Group, l.Spec.Reason, l.Status.LockedBy, duration.HumanDuration(now.Sub(l.Status.LockedAt.Time)), expires},
			Object: runtime.RawExtension{Object: l},
		})
	}
	return table, nil
}
