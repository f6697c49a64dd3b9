package execlock

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/locks"
)

const namespace = "execproxy-system"

var t0 = time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)

func newREST() (*REST, *fake.Clientset) {
	client := fake.NewClientset()
	r := NewREST(client, namespace)
	r.now = func() time.Time { return t0 }
	return r, client
}

func as(name string) context.Context {
	return request.WithUser(context.Background(), &user.DefaultInfo{Name: name})
}

func seconds(s int64) *int64 { return &s }

func body(name, usr, group, reason string, expirationSeconds *int64) *api.ExecLock {
	return &api.ExecLock{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: api.ExecLockSpec{User: usr, Group: group, Reason: reason, ExpirationSeconds: expirationSeconds},
		// Whatever the body says of who locked, the request's user did.
		Status: api.ExecLockStatus{LockedBy: "mallory", LockedAt: metav1.NewTime(t0.Add(-time.Hour))}}
}

func TestCreate(t *testing.T) {
	cases := []struct {
		name     string
		body     *api.ExecLock
		wantName string
		expires  time.Duration // 0: none
		invalid  string
	}{
		{"a user, named by the server", body("", "alice", "", "incident 42", seconds(3600)), "user-alice", time.Hour, ""},
		{"a group, named by the client", body("group-ops", "", "ops", "", nil), "group-ops", 0, ""},
		{"a service account", body("", "system:serviceaccount:ns:robot", "", "", nil), "user-system:serviceaccount:ns:robot", 0, ""},
		{"a user and a group", body("", "alice", "ops", "", nil), "", 0, "exactly one of spec.user and spec.group"},
		{"neither", body("", "", "", "", nil), "", 0, "exactly one of spec.user and spec.group"},
		{"a name not of the subject", body("user-bob", "alice", "", "", nil), "", 0, "must be user-alice"},
		{"an OIDC user no path can hold, named by a hash", body("", "https://issuer#1234", "", "", nil), api.LockName("https://issuer#1234", ""), 0, ""},
		{"a group path", body("", "", "/team/x", "", nil), api.LockName("", "/team/x"), 0, ""},
		{"no time left", body("", "alice", "", "", seconds(0)), "", 0, "must be positive"},
		{"a reason too long", body("", "alice", "", strings.Repeat("x", maxReason+1), nil), "", 0, "spec.reason"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, client := newREST()
			obj, err := r.Create(as("sec"), tc.body, nil, nil)
			if tc.invalid != "" {
				if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.invalid) {
					t.Fatalf("got %v, want invalid: %s", err, tc.invalid)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := obj.(*api.ExecLock)
			if got.Name != tc.wantName || got.Status.LockedBy != "sec" || !got.Status.LockedAt.Time.Equal(t0) || got.UID != "" && got.ResourceVersion == "" {
				t.Errorf("created %s by %s at %v", got.Name, got.Status.LockedBy, got.Status.LockedAt)
			}
			if exp := got.Status.ExpirationTimestamp; (tc.expires == 0) != (exp == nil) || (exp != nil && !exp.Time.Equal(t0.Add(tc.expires))) {
				t.Errorf("expires %v, want %v after %v", exp, tc.expires, t0)
			}
			cm, err := client.CoreV1().ConfigMaps(namespace).Get(context.Background(), locks.ConfigMapName(tc.wantName), metav1.GetOptions{})
			if err != nil || cm.Labels[locks.LabelLock] != "true" {
				t.Fatalf("stored: %v, %v", cm, err)
			}
		})
	}
}

// TestRenew: a second lock of the same subject replaces reason and locker, and never shortens it.
func TestRenew(t *testing.T) {
	cases := []struct {
		name          string
		first, second *int64
		later         time.Duration // the second lock comes this long after the first
		want          time.Duration // after t0; 0: none
	}{
		{"until unlocked stays so", nil, seconds(3600), time.Minute, 0},
		{"a longer lock extends", seconds(3600), seconds(7200), time.Minute, time.Minute + 2*time.Hour},
		{"a shorter lock does not shorten", seconds(7200), seconds(60), time.Minute, 2 * time.Hour},
		{"until unlocked extends", seconds(60), nil, time.Minute / 2, 0},
		{"an expired lock is replaced", seconds(60), seconds(60), 2 * time.Minute, 3 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newREST()
			if _, err := r.Create(as("sec"), body("", "alice", "", "first", tc.first), nil, nil); err != nil {
				t.Fatal(err)
			}
			r.now = func() time.Time { return t0.Add(tc.later) }
			obj, err := r.Create(as("lead"), body("", "alice", "", "second", tc.second), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := obj.(*api.ExecLock)
			if got.Spec.Reason != "second" || got.Status.LockedBy != "lead" || !got.Status.LockedAt.Time.Equal(t0.Add(tc.later)) {
				t.Errorf("renewed: %q by %s at %v", got.Spec.Reason, got.Status.LockedBy, got.Status.LockedAt)
			}
			if exp := got.Status.ExpirationTimestamp; (tc.want == 0) != (exp == nil) || (exp != nil && !exp.Time.Equal(t0.Add(tc.want))) {
				t.Errorf("expires %v, want %v after t0", exp, tc.want)
			}
		})
	}
}

// TestDryRun: a dry run validates and answers, and stores or deletes nothing.
func TestDryRun(t *testing.T) {
	r, client := newREST()
	dryRun := []string{metav1.DryRunAll}
	obj, err := r.Create(as("sec"), body("", "alice", "", "", nil), nil, &metav1.CreateOptions{DryRun: dryRun})
	if err != nil || obj.(*api.ExecLock).Status.LockedBy != "sec" {
		t.Fatalf("dry run: %v %v", obj, err)
	}
	if cms, _ := client.CoreV1().ConfigMaps(namespace).List(context.Background(), metav1.ListOptions{}); len(cms.Items) != 0 {
		t.Fatalf("a dry run stored %d ConfigMaps", len(cms.Items))
	}
	if _, err := r.Create(as("sec"), body("", "alice", "", "", nil), nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Delete(as("sec"), "user-alice", nil, &metav1.DeleteOptions{DryRun: dryRun}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(as("sec"), "user-alice", nil); err != nil {
		t.Errorf("after a dry-run delete: %v", err)
	}
}

func TestGetListDelete(t *testing.T) {
	r, _ := newREST()
	for _, b := range []*api.ExecLock{body("", "alice", "", "", nil), body("", "", "ops", "", seconds(60))} {
		if _, err := r.Create(as("sec"), b, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	obj, err := r.List(as("sec"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range obj.(*api.ExecLockList).Items {
		names = append(names, l.Name)
	}
	if len(names) != 2 {
		t.Errorf("listed %v", names)
	}
	if _, err := r.Get(as("sec"), "user-alice", nil); err != nil {
		t.Error(err)
	}
	if _, deleted, err := r.Delete(as("sec"), "user-alice", nil, nil); err != nil || !deleted {
		t.Fatalf("delete: %v %v", deleted, err)
	}
	for _, op := range []func() error{
		func() error { _, err := r.Get(as("sec"), "user-alice", nil); return err },
		func() error { _, _, err := r.Delete(as("sec"), "user-alice", nil, nil); return err },
	} {
		if err := op(); !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), `execlocks.execproxy.dev "user-alice" not found`) {
			t.Errorf("after delete: %v", err)
		}
	}
	table, err := r.ConvertToTable(context.Background(), obj, nil)
	if err != nil || len(table.Rows) != 2 {
		t.Fatalf("table: %v %v", table, err)
	}
}
