package locks

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/proxy"
)

const namespace = "execproxy-system"

var t0 = time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)

func lock(user, group, reason string, expires time.Duration) *api.ExecLock {
	l := &api.ExecLock{ObjectMeta: metav1.ObjectMeta{Name: api.LockName(user, group)},
		Spec:   api.ExecLockSpec{User: user, Group: group, Reason: reason},
		Status: api.ExecLockStatus{LockedBy: "sec", LockedAt: metav1.NewTime(t0)}}
	if expires != 0 {
		l.Status.ExpirationTimestamp = &metav1.Time{Time: t0.Add(expires)}
	}
	return l
}

func configMap(t *testing.T, l *api.ExecLock) *corev1.ConfigMap {
	t.Helper()
	cm, err := ToConfigMap(l, namespace)
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func TestApplies(t *testing.T) {
	cases := []struct {
		name   string
		lock   *api.ExecLock
		user   string
		groups []string
		at     time.Duration
		want   bool
	}{
		{"the user", lock("alice", "", "", 0), "alice", nil, 0, true},
		{"another user", lock("alice", "", "", 0), "bob", []string{"alice"}, 0, false},
		{"a member of the group", lock("", "ops", "", 0), "bob", []string{"dev", "ops"}, 0, true},
		{"not a member", lock("", "ops", "", 0), "ops", []string{"dev"}, 0, false},
		{"before it expires", lock("alice", "", "", time.Hour), "alice", nil, time.Hour - time.Second, true},
		{"as it expires", lock("alice", "", "", time.Hour), "alice", nil, time.Hour, false},
		{"after it expired", lock("", "ops", "", time.Hour), "bob", []string{"ops"}, 2 * time.Hour, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Applies(tc.lock, tc.user, tc.groups, t0.Add(tc.at)); got != tc.want {
				t.Errorf("Applies = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConfigMapRoundTrip(t *testing.T) {
	in := lock("system:serviceaccount:ns:Robot", "", "incident 42", time.Hour)
	cm := configMap(t, in)
	if cm.Name != ConfigMapName(in.Name) || cm.Labels[LabelLock] != "true" || cm.Annotations[AnnotationName] != in.Name {
		t.Errorf("ConfigMap %s labels %v annotations %v", cm.Name, cm.Labels, cm.Annotations)
	}
	cm.UID, cm.ResourceVersion = "uid-1", "7"
	out, err := FromConfigMap(cm)
	if err != nil {
		t.Fatal(err)
	}
	if out.Name != in.Name || out.Spec != in.Spec || out.Status.LockedBy != "sec" || !out.Status.ExpirationTimestamp.Equal(in.Status.ExpirationTimestamp) ||
		out.UID != "uid-1" || out.ResourceVersion != "7" || out.Kind != "ExecLock" {
		t.Errorf("round trip: %+v", out)
	}
	cm.Data[dataKey] = `{"metadata":{"name":"user-x"},"spec":{"user":"x","group":"y"}}`
	if _, err := FromConfigMap(cm); err == nil {
		t.Error("a lock of a user and a group decoded")
	}
}

func TestRefusalAndEndReason(t *testing.T) {
	cases := []struct {
		name            string
		lock            *api.ExecLock
		message, reason string
	}{
		{"a user's, until a time", lock("alice", "", "incident 42", time.Hour),
			`user "alice" is locked out of sessions by exec-proxy lock "user-alice": incident 42; locked by sec at 2026-12-06T09:00:00Z, until 2026-12-06T10:00:00Z`,
			`locked by exec-proxy lock "user-alice" (incident 42)`},
		{"a group's, until unlocked, no reason", lock("", "ops", "", 0),
			`user "alice" is locked out of sessions by exec-proxy lock "group-ops" (of group "ops"); locked by sec at 2026-12-06T09:00:00Z, until unlocked`,
			`locked by exec-proxy lock "group-ops"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Refusal(tc.lock, "alice")
			st, ok := err.(apierrors.APIStatus)
			if !ok || st.Status().Code != http.StatusForbidden || st.Status().Message != tc.message {
				t.Errorf("refusal %v,\nwant 403 %s", err, tc.message)
			}
			if d := st.Status().Details; d == nil || d.Kind != "execlocks" || d.Group != api.GroupName || d.Name != tc.lock.Name {
				t.Errorf("details %+v", d)
			}
			if got := EndReason(tc.lock); got != tc.reason {
				t.Errorf("end reason %q, want %q", got, tc.reason)
			}
		})
	}
}

// sessions are live sessions by user and groups.
type sessions []*proxy.Session

func (s sessions) Sessions() []*proxy.Session { return s }

func live(user string, groups ...string) *proxy.Session {
	return &proxy.Session{Identity: proxy.Identity{ID: user + "-session", User: user, Groups: groups}}
}

func started(t *testing.T, live sessions, objects ...*corev1.ConfigMap) (*Locks, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset()
	for _, cm := range objects {
		if _, err := client.CoreV1().ConfigMaps(namespace).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	factory := InformerFactory(client, namespace)
	l, err := New(client, namespace, factory, live)
	if err != nil {
		t.Fatal(err)
	}
	l.now = func() time.Time { return t0.Add(time.Minute) }
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	if _, err := l.Locked("alice", nil, t0); !apierrors.IsServiceUnavailable(err) {
		t.Errorf("before the informer synced: %v, want a 503", err)
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("%v did not sync", typ)
		}
	}
	return l, client
}

func TestLocked(t *testing.T) {
	unrelated := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName("user-carol"), Namespace: namespace}}
	l, _ := started(t, nil, configMap(t, lock("alice", "", "a", 0)), configMap(t, lock("", "ops", "o", 0)),
		configMap(t, lock("dave", "", "expired", 30*time.Second)), unrelated)
	cases := []struct {
		user   string
		groups []string
		want   string
	}{
		{"alice", []string{"ops"}, "user-alice"}, // the user's own lock first
		{"bob", []string{"dev", "ops"}, "group-ops"},
		{"bob", []string{"dev"}, ""},
		{"carol", nil, ""}, // not labelled: not a lock
		{"dave", nil, ""},  // expired
	}
	for _, tc := range cases {
		got, err := l.Locked(tc.user, tc.groups, t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if name := lockName(got); name != tc.want {
			t.Errorf("Locked(%s, %v) = %q, want %q", tc.user, tc.groups, name, tc.want)
		}
		if err := l.Check(tc.user, tc.groups); (err != nil) != (tc.want != "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Check(%s) = %v", tc.user, err)
		}
	}
}

func lockName(l *api.ExecLock) string {
	if l == nil {
		return ""
	}
	return l.Name
}

// TestEnd: a new lock ends the sessions of this replica that it applies to, with its end reason.
func TestEnd(t *testing.T) {
	alice, bob, carol := live("alice"), live("bob", "ops"), live("carol", "dev")
	l, client := started(t, sessions{alice, bob, carol})
	for _, lk := range []*api.ExecLock{lock("alice", "", "incident 42", 0), lock("", "ops", "", 0)} {
		if _, err := client.CoreV1().ConfigMaps(namespace).Create(context.Background(), configMap(t, lk), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The informer's handler ends them; wait for it, not for a time.
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return alice.EndReason() != "" && bob.EndReason() != "", nil
	})
	if err != nil {
		t.Fatalf("sessions not ended: alice %q, bob %q", alice.EndReason(), bob.EndReason())
	}
	if got := alice.EndReason(); got != `locked by exec-proxy lock "user-alice" (incident 42)` {
		t.Errorf("alice's end reason %q", got)
	}
	if got := bob.EndReason(); got != `locked by exec-proxy lock "group-ops"` {
		t.Errorf("bob's end reason %q", got)
	}
	if n := l.End(lock("", "ops", "", 0)); n != 1 || carol.EndReason() != "" {
		t.Errorf("End ended %d, carol's end reason %q", n, carol.EndReason())
	}
	if n := l.End(lock("carol", "", "", 30*time.Second)); n != 0 {
		t.Errorf("an expired lock ended %d sessions", n)
	}
}

func TestDeleteExpired(t *testing.T) {
	l, client := started(t, nil, configMap(t, lock("alice", "", "", 30*time.Second)), configMap(t, lock("bob", "", "", time.Hour)),
		configMap(t, lock("carol", "", "", 0)))
	l.deleteExpired(context.Background(), t0.Add(time.Minute))
	cms, err := client.CoreV1().ConfigMaps(namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, cm := range cms.Items {
		left = append(left, cm.Annotations[AnnotationName])
	}
	if strings.Join(left, ",") != "user-bob,user-carol" {
		t.Errorf("left %v, want the unexpired user-bob and user-carol", left)
	}
}
