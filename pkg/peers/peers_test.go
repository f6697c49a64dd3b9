package peers

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes/fake"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
)

func replicaLease(name, address string, renewed time.Time, labelled bool) *coordinationv1.Lease {
	duration := int32(30)
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Annotations: map[string]string{AnnotationAddress: address}},
		Spec:       coordinationv1.LeaseSpec{LeaseDurationSeconds: &duration, RenewTime: &metav1.MicroTime{Time: renewed}},
	}
	if labelled {
		l.Labels = map[string]string{LabelReplica: "true"}
	}
	return l
}

func lister(t *testing.T, leases ...*coordinationv1.Lease) coordinationlisters.LeaseNamespaceLister {
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, l := range leases {
		if err := indexer.Add(l); err != nil {
			t.Fatal(err)
		}
	}
	return coordinationlisters.NewLeaseLister(indexer).Leases("ns")
}

func TestPeersFromLeases(t *testing.T) {
	now := time.Now()
	p := &Peers{Self: "r1", Now: func() time.Time { return now }, Leases: lister(t,
		replicaLease("r1", "10.0.0.1:8443", now, true),                      // this replica
		replicaLease("r2", "10.0.0.2:8443", now.Add(-10*time.Second), true), // current
		replicaLease("r3", "[fd00::3]:8443", now.Add(-29*time.Second), true),
		replicaLease("r4", "10.0.0.4:8443", now.Add(-31*time.Second), true), // expired: crashed
		replicaLease("r5", "", now, true),                                   // no address
		replicaLease("other", "10.0.0.6:8443", now, false),                  // some other lease
	)}
	got, err := p.peers()
	if err != nil {
		t.Fatal(err)
	}
	if want := []peer{{"r2", "10.0.0.2:8443"}, {"r3", "[fd00::3]:8443"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, err := (*Peers)(nil).peers(); got != nil || err != nil {
		t.Errorf("no peers: %v %v", got, err)
	}
}

func TestAsk(t *testing.T) {
	var seen []http.Header
	ok := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		seen = append(seen, req.Header.Clone())
		_, _ = w.Write([]byte(`{"items":[]}`))
	}))
	defer ok.Close()
	broken := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		panic(http.ErrAbortHandler) // the connection drops
	}))
	defer broken.Close()
	host := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "https://") }
	p := &Peers{Self: "r1", Client: ok.Client(), Leases: lister(t,
		replicaLease("ok", host(ok), time.Now(), true), replicaLease("broken", host(broken), time.Now(), true))}
	answers, err := p.Ask(context.Background(), http.MethodDelete, "/x", "carol")
	if err != nil || len(answers) != 2 {
		t.Fatalf("answers %v, %v", answers, err)
	}
	if a := answers[1]; a.Peer != "ok at "+host(ok) || a.Err != nil || a.Code != 200 || string(a.Body) != `{"items":[]}` {
		t.Errorf("ok peer: %+v", a)
	}
	if a := answers[0]; a.Peer != "broken at "+host(broken) || a.Err == nil {
		t.Errorf("broken peer: %+v", a)
	}
	if len(seen) != 1 || seen[0].Get(HeaderPeer) != "r1" || seen[0].Get(HeaderOnBehalfOf) != "carol" {
		t.Errorf("headers %v", seen)
	}
}

func TestWithRequests(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("create", "selfsubjectreviews", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, &authenticationv1.SelfSubjectReview{Status: authenticationv1.SelfSubjectReviewStatus{
			UserInfo: authenticationv1.UserInfo{Username: "system:exec-proxy"}}}, nil
	})
	self := &Identity{Reviews: client.AuthenticationV1().SelfSubjectReviews()}
	cases := []struct {
		name, caller string
		headers      map[string]string
		want         *Request
	}{
		{"not a peer request", "alice", nil, nil},
		{"from a peer", "system:exec-proxy", map[string]string{HeaderPeer: "r2", HeaderOnBehalfOf: "carol"}, &Request{From: "r2", OnBehalfOf: "carol"}},
		{"on behalf of, from someone else", "mallory", map[string]string{HeaderPeer: "r2", HeaderOnBehalfOf: "carol"}, &Request{From: "r2"}},
		{"on behalf of, not as a peer", "system:exec-proxy", map[string]string{HeaderOnBehalfOf: "carol"}, nil},
		{"the user whole, from a peer", "system:exec-proxy", map[string]string{HeaderPeer: "r2", HeaderOnBehalfOf: "carol",
			HeaderOnBehalfOfUser: `{"username":"carol","groups":["sec"]}`},
			&Request{From: "r2", OnBehalfOf: "carol", User: &authenticationv1.UserInfo{Username: "carol", Groups: []string{"sec"}}}},
		{"the user whole, from someone else", "mallory", map[string]string{HeaderPeer: "r2", HeaderOnBehalfOf: "carol",
			HeaderOnBehalfOfUser: `{"username":"carol","groups":["sec"]}`}, &Request{From: "r2"}},
		{"the user whole, another name", "system:exec-proxy", map[string]string{HeaderPeer: "r2", HeaderOnBehalfOf: "carol",
			HeaderOnBehalfOfUser: `{"username":"root"}`}, &Request{From: "r2", OnBehalfOf: "carol"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got *Request
			h := WithRequests(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
				if r, ok := FromContext(req.Context()); ok {
					got = &r
				}
			}), self)
			req := httptest.NewRequest("GET", "/", nil)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			req = req.WithContext(request.WithUser(req.Context(), &user.DefaultInfo{Name: tc.caller}))
			h.ServeHTTP(httptest.NewRecorder(), req)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if n := len(client.Actions()); n != 1 {
		t.Errorf("%d self subject reviews, want 1 (kept)", n)
	}
}

func TestOpen(t *testing.T) {
	serve := func(code int, body string) *httptest.Server {
		return httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Header.Get(HeaderPeer) != "r1" {
				t.Errorf("no %s header", HeaderPeer)
			}
			w.WriteHeader(code)
			_, _ = w.Write([]byte(body))
		}))
	}
	holds, lacks, fails := serve(200, "the recording"), serve(404, `{"kind":"Status","code":404}`), serve(500, "")
	for _, s := range []*httptest.Server{holds, lacks, fails} {
		defer s.Close()
	}
	host := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "https://") }
	cases := []struct {
		name    string
		servers []*httptest.Server
		body    string
		codes   []int
	}{
		{"one holds it", []*httptest.Server{holds, lacks}, "the recording", []int{404}},
		{"none holds it", []*httptest.Server{lacks, fails}, "", []int{404, 500}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var leases []*coordinationv1.Lease
			for i, s := range tc.servers {
				leases = append(leases, replicaLease(string(rune('a'+i)), host(s), time.Now(), true))
			}
			p := &Peers{Self: "r1", Client: holds.Client(), Leases: lister(t, leases...)}
			body, others, err := p.Open(context.Background(), "/rec")
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if body != nil {
				b, _ := io.ReadAll(body)
				body.Close()
				got = string(b)
			}
			var codes []int
			for _, a := range others {
				codes = append(codes, a.Code)
			}
			slices.Sort(codes)
			if got != tc.body || !reflect.DeepEqual(codes, tc.codes) {
				t.Errorf("got %q and %v, want %q and %v", got, codes, tc.body, tc.codes)
			}
		})
	}
}
