package execsession

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/warning"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/peers"
	"github.com/exec-proxy/exec-proxy/pkg/proxy"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// fakePeers answers as real peers would: each request is served by that peer's own REST, in a
// peer request's context (so it answers for itself only). A nil REST is a peer that cannot be reached.
type fakePeers struct {
	peers map[string]*REST
	asked []string
}

func (f *fakePeers) Ask(ctx context.Context, method, p, onBehalfOf string) ([]peers.Answer, error) {
	f.asked = append(f.asked, method+" "+p+" "+onBehalfOf)
	u, err := url.Parse(p)
	if err != nil {
		return nil, err
	}
	namespace, _ := request.NamespaceFrom(ctx)
	var answers []peers.Answer
	for name, r := range f.peers {
		if r == nil {
			answers = append(answers, peers.Answer{Peer: name, Err: errors.New("connection refused")})
			continue
		}
		pctx := request.WithNamespace(context.Background(), namespace)
		pctx = request.WithUser(pctx, &user.DefaultInfo{Name: "system:exec-proxy"})
		pctx = peers.NewContext(pctx, peers.Request{From: "r1", OnBehalfOf: onBehalfOf})
		var obj runtime.Object
		if id := path.Base(u.Path); id == "execsessions" {
			opts := &metainternalversion.ListOptions{}
			if s := u.Query().Get("fieldSelector"); s != "" {
				opts.FieldSelector = fields.ParseSelectorOrDie(s)
			}
			obj, err = r.List(pctx, opts)
		} else if method == http.MethodDelete {
			obj, _, err = r.Delete(pctx, id, nil, nil)
		} else {
			obj, err = r.Get(pctx, id, nil)
		}
		a := peers.Answer{Peer: name, Code: http.StatusOK}
		if err != nil {
			st := apierrors.APIStatus(nil)
			errors.As(err, &st)
			a.Code, obj = int(st.Status().Code), &metav1.Status{Code: st.Status().Code, Message: st.Status().Message}
		}
		a.Body, _ = json.Marshal(obj)
		answers = append(answers, a)
	}
	return answers, nil
}

type warnings []string

func (w *warnings) AddWarning(_, text string) { *w = append(*w, text) }

func peerSessions() fakeSessions {
	start := time.Now().Add(-2 * time.Minute) // earlier than the local ones: listed first
	return fakeSessions{
		{Identity: proxy.Identity{ID: "p1", Kind: session.KindExec, User: "alice", Namespace: "a", Pod: "p", Start: start}},
		{Identity: proxy.Identity{ID: "p2", Kind: session.KindExec, User: "bob", Namespace: "b", Pod: "q", Start: start}},
	}
}

func TestListCoversPeers(t *testing.T) {
	cases := []struct {
		name, namespace, selector string
		down                      bool
		want                      []string
		warning                   string
	}{
		{"all", "", "", false, []string{"a/p1", "b/p2", "a/s1", "b/s2", "b/s3"}, ""},
		{"one namespace", "a", "", false, []string{"a/p1", "a/s1"}, ""},
		{"by user", "", "spec.user=bob", false, []string{"b/p2", "b/s2"}, ""},
		{"a peer down", "", "", true, []string{"a/p1", "b/p2", "a/s1", "b/s2", "b/s3"}, "the sessions of exec-proxy replica r3 are not listed: connection refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakePeers{peers: map[string]*REST{"r2": NewREST(peerSessions(), "r2", nil)}}
			if tc.down {
				fake.peers["r3"] = nil
			}
			var got warnings
			ctx := warning.WithWarningRecorder(ctxIn(tc.namespace, "admin"), &got)
			opts := &metainternalversion.ListOptions{}
			if tc.selector != "" {
				opts.FieldSelector = fields.ParseSelectorOrDie(tc.selector)
			}
			obj, err := NewREST(sessions(), "r1", fake).List(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if names := names(obj); !reflect.DeepEqual(names, tc.want) {
				t.Errorf("got %v, want %v", names, tc.want)
			}
			if (tc.warning == "") != (len(got) == 0) || (tc.warning != "" && !strings.Contains(strings.Join(got, "\n"), tc.warning)) {
				t.Errorf("warnings %q, want %q", got, tc.warning)
			}
			for _, item := range obj.(*api.ExecSessionList).Items {
				if want := map[bool]string{true: "r2", false: "r1"}[strings.HasPrefix(item.Name, "p")]; item.Status.Replica != want {
					t.Errorf("%s: replica %q, want %q", item.Name, item.Status.Replica, want)
				}
			}
		})
	}
}

func TestPeerRequestsAnswerForThemselves(t *testing.T) {
	fake := &fakePeers{peers: map[string]*REST{"r2": NewREST(peerSessions(), "r2", nil)}}
	ctx := peers.NewContext(ctxIn("", "system:exec-proxy"), peers.Request{From: "r2"})
	r := NewREST(sessions(), "r1", fake)
	if obj, err := r.List(ctx, nil); err != nil || len(names(obj)) != 3 {
		t.Errorf("list: %v %v", names(obj), err)
	}
	if _, err := r.Get(ctx, "p1", nil); !apierrors.IsNotFound(err) {
		t.Errorf("get of a peer's session: %v", err)
	}
	if len(fake.asked) != 0 {
		t.Errorf("a peer's request went on to peers: %v", fake.asked)
	}
}

func TestGetAndDeleteOnPeers(t *testing.T) {
	cases := []struct {
		name, id string
		down     bool
		code     int32 // 0: found
	}{
		{"on a peer", "p1", false, 0},
		{"on a peer, another down", "p1", true, 0},
		{"nowhere", "nope", false, http.StatusNotFound},
		{"nowhere, a peer down", "nope", true, http.StatusServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			held := peerSessions()
			fake := &fakePeers{peers: map[string]*REST{"r2": NewREST(held, "r2", nil)}}
			if tc.down {
				fake.peers["r3"] = nil
			}
			r := NewREST(sessions(), "r1", fake)
			obj, err := r.Get(ctxIn("a", "carol"), tc.id, nil)
			if code := codeOf(err); code != tc.code {
				t.Fatalf("get: %v, want code %d", err, tc.code)
			}
			if err == nil && obj.(*api.ExecSession).Status.Replica != "r2" {
				t.Errorf("get: %+v", obj)
			}
			_, deleted, err := r.Delete(ctxIn("a", "carol"), tc.id, nil, nil)
			if code := codeOf(err); code != tc.code || deleted != (tc.code == 0) {
				t.Fatalf("delete: %v %v, want code %d", deleted, err, tc.code)
			}
			if reason := held[0].EndReason(); (reason == "killed by carol") != (tc.code == 0) {
				t.Errorf("peer's session end reason %q", reason)
			}
			if want := "DELETE /apis/execproxy.dev/v1alpha1/namespaces/a/execsessions/" + tc.id + " carol"; fake.asked[len(fake.asked)-1] != want {
				t.Errorf("asked %q, want %q", fake.asked[len(fake.asked)-1], want)
			}
		})
	}
}

func codeOf(err error) int32 {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return st.Status().Code
	}
	if err != nil {
		return -1
	}
	return 0
}
