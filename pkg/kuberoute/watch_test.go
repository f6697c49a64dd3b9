package kuberoute

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

// fakePodClient records the options of exec-proxy's lists and watches; the fake clientset does not
// keep timeoutSeconds nor allowWatchBookmarks.
type fakePodClient struct {
	mu      sync.Mutex
	opts    []metav1.ListOptions
	list    *corev1.PodList
	watcher *watch.FakeWatcher
}

func (f *fakePodClient) PatchEphemeralContainers(context.Context, string, string, types.PatchType, []byte, metav1.PatchOptions) (*corev1.Pod, error) {
	panic("not called")
}

func (f *fakePodClient) List(_ context.Context, _ string, opts metav1.ListOptions) (*corev1.PodList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opts = append(f.opts, opts)
	return f.list, nil
}

func (f *fakePodClient) Watch(_ context.Context, _ string, opts metav1.ListOptions) (watch.Interface, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opts = append(f.opts, opts)
	return f.watcher, nil
}

func TestPodByName(t *testing.T) {
	pod := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", ResourceVersion: "7"}}
	const pods = "/api/v1/namespaces/ns/pods?"
	cases := []struct {
		name, query string
		code        int
		message     string
		want        *metav1.ListOptions // what exec-proxy asked kube-apiserver
	}{
		{"reflector's list", "fieldSelector=metadata.name%3Dp&limit=500&resourceVersion=0", 200, `"name":"p"`,
			&metav1.ListOptions{FieldSelector: "metadata.name=p", Limit: 500, ResourceVersion: "0"}},
		{"reflector's watch", "allowWatchBookmarks=true&fieldSelector=metadata.name%3Dp&resourceVersion=7&timeoutSeconds=412&watch=true", 200, `{"type":"MODIFIED","object":{"kind":"Pod"`,
			&metav1.ListOptions{FieldSelector: "metadata.name=p", ResourceVersion: "7", TimeoutSeconds: ptr.To[int64](412), AllowWatchBookmarks: true, Watch: true}},
		{"a watch without a timeout", "fieldSelector=metadata.name%3Dp&watch=true", 200, `"type":"MODIFIED"`,
			&metav1.ListOptions{FieldSelector: "metadata.name=p", TimeoutSeconds: ptr.To[int64](1800), Watch: true}},
		{"a watch longer than the route's", "fieldSelector=metadata.name%3Dp&watch=true&timeoutSeconds=86400", 200, `"type":"MODIFIED"`,
			&metav1.ListOptions{FieldSelector: "metadata.name=p", TimeoutSeconds: ptr.To[int64](1800), Watch: true}},
		{"the selector as sent", "fieldSelector=metadata.name%3D%3Dp", 200, `"name":"p"`, &metav1.ListOptions{FieldSelector: "metadata.name==p"}},
		{"another field", "fieldSelector=spec.nodeName%3Dn", 400, "by fieldSelector metadata.name=NAME alone", nil},
		{"another field too", "fieldSelector=metadata.name%3Dp,spec.nodeName%3Dn&watch=true", 400, "by fieldSelector metadata.name=NAME alone", nil},
		{"not a name", "fieldSelector=metadata.name%21%3Dp", 400, "by fieldSelector metadata.name=NAME alone", nil},
		{"a bad selector", "fieldSelector=metadata.name", 400, "fieldSelector", nil},
		{"a labelSelector too", "fieldSelector=metadata.name%3Dp&labelSelector=app%3Dweb", 400, "not by fieldSelector", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			w := watch.NewFakeWithChanSize(1, false)
			w.Modify(pod.DeepCopy())
			w.Stop() // the events end: kube-apiserver ended the watch
			client := &fakePodClient{list: &corev1.PodList{Items: []corev1.Pod{pod}}, watcher: w}
			h := withRequestInfo(&Handler{Pods: fakePods{}, Client: client, Sessions: &fakeSessions{}})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", api.RoutePrefix+pods+tc.query, nil))
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.message) {
				t.Errorf("got %d %s, want %d with %q", rec.Code, rec.Body, tc.code, tc.message)
			}
			var want []metav1.ListOptions
			if tc.want != nil {
				want = []metav1.ListOptions{*tc.want}
			}
			if !reflect.DeepEqual(client.opts, want) {
				t.Errorf("exec-proxy asked with %+v, want %+v", client.opts, want)
			}
		})
	}
}

// TestWatchEndsWithTheClient: a watch that kube-apiserver keeps open ends when the client goes, and
// exec-proxy's own watch is stopped.
func TestWatchEndsWithTheClient(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	w := watch.NewFakeWithChanSize(1, false)
	w.Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}})
	route := withRequestInfo(&Handler{Pods: fakePods{}, Client: &fakePodClient{watcher: w}, Sessions: &fakeSessions{}})
	served := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		defer close(served)
		route.ServeHTTP(rw, req)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+api.RoutePrefix+"/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dp&watch=true", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ev metav1.WatchEvent
	if err := json.NewDecoder(bufio.NewReader(resp.Body)).Decode(&ev); err != nil || ev.Type != "ADDED" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("first event %+v (%v), content type %q", ev, err, resp.Header.Get("Content-Type"))
	}
	cancel()
	<-served
	if !w.IsStopped() {
		t.Error("exec-proxy's watch was not stopped")
	}
}

// TestClientPods: the patch, list and watch reach kube-apiserver as the route asked.
func TestClientPods(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}
	client := fake.NewClientset(pod)
	pods := ClientPods{Client: client}
	ctx := context.Background()
	patch := []byte(`{"spec":{"ephemeralContainers":[{"name":"d","image":"busybox"}]}}`)
	got, err := pods.PatchEphemeralContainers(ctx, "ns", "p", types.StrategicMergePatchType, patch, metav1.PatchOptions{DryRun: []string{"All"}})
	if err != nil || len(got.Spec.EphemeralContainers) != 1 {
		t.Fatalf("patch: %v %+v", err, got)
	}
	if _, err := pods.List(ctx, "ns", metav1.ListOptions{FieldSelector: "metadata.name=p"}); err != nil {
		t.Fatal(err)
	}
	w, err := pods.Watch(ctx, "ns", metav1.ListOptions{FieldSelector: "metadata.name=p", ResourceVersion: "3"})
	if err != nil {
		t.Fatal(err)
	}
	w.Stop()
	actions := client.Actions()
	if len(actions) != 3 {
		t.Fatalf("actions %+v", actions)
	}
	if a := actions[0]; a.GetVerb() != "patch" || a.GetSubresource() != "ephemeralcontainers" {
		t.Errorf("patch went as %s %s", a.GetVerb(), a.GetSubresource())
	}
	if l := actions[1].(clienttesting.ListAction).GetListRestrictions(); l.Fields.String() != "metadata.name=p" {
		t.Errorf("list with fields %q", l.Fields)
	}
	if w := actions[2].(clienttesting.WatchAction).GetWatchRestrictions(); w.Fields.String() != "metadata.name=p" || w.ResourceVersion != "3" {
		t.Errorf("watch with %+v", w)
	}
}
