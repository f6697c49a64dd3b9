package peers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes/fake"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
)

func slice(name, service string, addressType discoveryv1.AddressType, ports []int32, endpoints ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: addressType, Endpoints: endpoints,
	}
	for i := range ports {
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{Port: &ports[i]})
	}
	return s
}

func endpoint(ready, serving *bool, addresses ...string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: addresses, Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving}}
}

func lister(t *testing.T, slices ...*discoveryv1.EndpointSlice) discoverylisters.EndpointSliceNamespaceLister {
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, s := range slices {
		if err := indexer.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	return discoverylisters.NewEndpointSliceLister(indexer).EndpointSlices("ns")
}

func TestAddresses(t *testing.T) {
	yes, no := new(bool), new(bool)
	*yes = true
	p := &Peers{Service: "exec-proxy", Self: "10.0.0.1:8443", Slices: lister(t,
		slice("a", "exec-proxy", discoveryv1.AddressTypeIPv4, []int32{8443},
			endpoint(nil, nil, "10.0.0.1"),  // this replica
			endpoint(yes, nil, "10.0.0.2"),  // ready
			endpoint(no, yes, "10.0.0.3"),   // draining: still serving its sessions
			endpoint(no, no, "10.0.0.4"),    // gone
			endpoint(nil, nil, "10.0.0.2")), // listed twice
		slice("b", "exec-proxy", discoveryv1.AddressTypeIPv6, []int32{8443}, endpoint(nil, nil, "fd00::5")),
		slice("c", "exec-proxy", discoveryv1.AddressTypeFQDN, []int32{9443}, endpoint(nil, nil, "localhost")),
		slice("d", "exec-proxy", discoveryv1.AddressTypeIPv4, []int32{1, 2}, endpoint(nil, nil, "10.0.0.6")), // which port?
		slice("e", "other", discoveryv1.AddressTypeIPv4, []int32{8443}, endpoint(nil, nil, "10.0.0.7")),
	)}
	got, err := p.Addresses()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := []string{"10.0.0.2:8443", "10.0.0.3:8443", "[fd00::5]:8443", "localhost:9443"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, err := (*Peers)(nil).Addresses(); got != nil || err != nil {
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
	port := func(s *httptest.Server) []int32 {
		u, _ := url.Parse(s.URL)
		n, _ := strconv.Atoi(u.Port())
		return []int32{int32(n)}
	}
	p := &Peers{Service: "svc", Client: ok.Client(), Name: "r1", Slices: lister(t,
		slice("a", "svc", discoveryv1.AddressTypeIPv4, port(ok), endpoint(nil, nil, "127.0.0.1")),
		slice("b", "svc", discoveryv1.AddressTypeIPv4, port(broken), endpoint(nil, nil, "127.0.0.1")))}
	answers, err := p.Ask(context.Background(), http.MethodDelete, "/x", "carol")
	if err != nil || len(answers) != 2 {
		t.Fatalf("answers %v, %v", answers, err)
	}
	for _, a := range answers {
		switch a.Peer {
		case strings.TrimPrefix(ok.URL, "https://"):
			if a.Err != nil || a.Code != 200 || string(a.Body) != `{"items":[]}` {
				t.Errorf("ok peer: %+v", a)
			}
		default:
			if a.Err == nil {
				t.Errorf("broken peer: %+v", a)
			}
		}
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
