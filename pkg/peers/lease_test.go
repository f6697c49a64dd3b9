package peers

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestAnnouncer(t *testing.T) {
	client := fake.NewClientset()
	a := &Announcer{Client: client, Namespace: "ns", Name: "r1", Address: "10.0.0.1:8443"}
	a.Start(context.Background())
	leases := client.CoordinationV1().Leases("ns")
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := leases.Get(context.Background(), "r1", metav1.GetOptions{})
		if err == nil {
			if l.Labels[LabelReplica] != "true" || l.Annotations[AnnotationAddress] != "10.0.0.1:8443" ||
				*l.Spec.HolderIdentity != "r1" || l.Spec.RenewTime == nil || expired(l, time.Now()) {
				t.Fatalf("lease %+v", l)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no lease: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.Withdraw(context.Background())
	actions := client.Actions()
	if last := actions[len(actions)-1]; last.GetVerb() != "delete" {
		t.Errorf("the last action is %s, not the delete: the renewal outlived Withdraw", last.GetVerb())
	}
	if _, err := leases.Get(context.Background(), "r1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("lease after Withdraw: %v", err)
	}
}
