package kuberoute

import (
	"context"
	"errors"
	"net/http"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

func TestClientObjects(t *testing.T) {
	om := metav1.ObjectMeta{Namespace: "ns", Name: "web"}
	client := fake.NewClientset(&corev1.Service{ObjectMeta: om}, &corev1.ReplicationController{ObjectMeta: om},
		&appsv1.DaemonSet{ObjectMeta: om}, &appsv1.Deployment{ObjectMeta: om}, &appsv1.ReplicaSet{ObjectMeta: om},
		&appsv1.StatefulSet{ObjectMeta: om}, &batchv1.Job{ObjectMeta: om})
	client.PrependReactor("get", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() == "locked" {
			return true, nil, apierrors.NewForbidden(a.GetResource().GroupResource(), "web", errors.New("RBAC"))
		}
		if a.GetNamespace() == "broken" {
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	objects := ClientObjects{Client: client}
	if len(workloadResources) != 7 {
		t.Fatalf("workload resources: %v", workloadResources)
	}
	for gr := range workloadResources {
		t.Run(gr.String(), func(t *testing.T) {
			obj, err := objects.Get(context.Background(), gr, "ns", "web")
			if err != nil {
				t.Fatal(err)
			}
			if m, err := meta.Accessor(obj); err != nil || m.GetName() != "web" {
				t.Errorf("got %#v", obj)
			}
			cases := []struct {
				namespace string
				code      int32
			}{{"other", http.StatusNotFound}, {"locked", http.StatusBadGateway}, {"broken", http.StatusInternalServerError}}
			for _, tc := range cases {
				_, err := objects.Get(context.Background(), gr, tc.namespace, "web")
				if apiCode(err) != tc.code {
					t.Errorf("%s: got %v, want %d", tc.namespace, err, tc.code)
				}
			}
		})
	}
	if _, err := objects.Get(context.Background(), schema.GroupResource{Resource: "secrets"}, "ns", "web"); !apierrors.IsNotFound(err) {
		t.Errorf("secrets: got %v, want NotFound", err)
	}
}

func apiCode(err error) int32 {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Code
	}
	return 0
}
