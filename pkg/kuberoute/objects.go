package kuberoute

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
)

// Pods reads pods; the informer-backed resolver in production.
type Pods interface {
	Pod(namespace, name string) (*corev1.Pod, error)
	PodsMatching(namespace string, selector labels.Selector) ([]*corev1.Pod, error)
}

// Objects reads the objects kubectl resolves a TYPE/NAME target from (deploy/web, svc/web...).
type Objects interface {
	Get(ctx context.Context, resource schema.GroupResource, namespace, name string) (runtime.Object, error)
}

// workloadResources are the kinds kubectl finds a pod for, by the API group and resource that
// kubectl's RESTMapper resolves them to.
var workloadResources = map[schema.GroupResource]bool{}

func init() {
	for gv, resources := range groupResources {
		group, _, _ := cutGroupVersion(gv)
		for _, r := range resources {
			if r.Name != "pods" && !strings.Contains(r.Name, "/") {
				workloadResources[schema.GroupResource{Group: group, Resource: r.Name}] = true
			}
		}
	}
}

func cutGroupVersion(gv string) (group, version string, ok bool) {
	parsed, err := schema.ParseGroupVersion(gv)
	return parsed.Group, parsed.Version, err == nil
}

// ClientObjects reads the objects with exec-proxy's own client: the request was authorized for the
// user first (get on that very object), so the user is never shown more than they could read
// themselves; exec-proxy's ClusterRole needs get on these resources.
type ClientObjects struct {
	Client kubernetes.Interface
}

func (c ClientObjects) Get(ctx context.Context, resource schema.GroupResource, namespace, name string) (runtime.Object, error) {
	opts := metav1.GetOptions{}
	var obj runtime.Object
	var err error
	switch resource {
	case schema.GroupResource{Resource: "services"}:
		obj, err = c.Client.CoreV1().Services(namespace).Get(ctx, name, opts)
	case schema.GroupResource{Resource: "replicationcontrollers"}:
		obj, err = c.Client.CoreV1().ReplicationControllers(namespace).Get(ctx, name, opts)
	case schema.GroupResource{Group: "apps", Resource: "daemonsets"}:
		obj, err = c.Client.AppsV1().DaemonSets(namespace).Get(ctx, name, opts)
	case schema.GroupResource{Group: "apps", Resource: "deployments"}:
		obj, err = c.Client.AppsV1().Deployments(namespace).Get(ctx, name, opts)
	case schema.GroupResource{Group: "apps", Resource: "replicasets"}:
		obj, err = c.Client.AppsV1().ReplicaSets(namespace).Get(ctx, name, opts)
	case schema.GroupResource{Group: "apps", Resource: "statefulsets"}:
		obj, err = c.Client.AppsV1().StatefulSets(namespace).Get(ctx, name, opts)
	case schema.GroupResource{Group: "batch", Resource: "jobs"}:
		obj, err = c.Client.BatchV1().Jobs(namespace).Get(ctx, name, opts)
	default:
		return nil, apierrors.NewNotFound(resource, name)
	}
	if err != nil {
		return nil, ownReadError(resource, name, err)
	}
	return obj, nil
}

// ownReadError keeps a NotFound as it is, but a refusal of exec-proxy's own read is exec-proxy's
// misconfiguration, not the user's: passed on as a 403 it would send them to their admin for the
// wrong permission.
func ownReadError(resource schema.GroupResource, name string, err error) error {
	if apierrors.IsNotFound(err) {
		return err
	}
	if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
		return &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusBadGateway, Reason: metav1.StatusReasonInternalError,
			Message: fmt.Sprintf("exec-proxy may not read %s %q itself (give its ClusterRole get on %s): %v", resource, name, resource, err),
		}}
	}
	return apierrors.NewInternalError(fmt.Errorf("reading %s %q: %w", resource, name, err))
}
