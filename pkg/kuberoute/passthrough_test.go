package kuberoute

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

// seen is what the fake kube-apiserver was sent.
type seen struct {
	method, path, rawPath, query, body string
	header, trailer                    http.Header
}

// fakeAPIServer answers every request with 201, a Warning and its own echo; a path ending in /watch
// streams two lines, the second only once the test has read the first.
func fakeAPIServer(t *testing.T, got chan<- seen, second <-chan struct{}) *url.URL {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, string(body), r.Header.Clone(), r.Trailer.Clone()}
		if strings.HasSuffix(r.URL.Path, "/watch") {
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "first\n")
			w.(http.Flusher).Flush()
			<-second
			_, _ = io.WriteString(w, "second\n")
			return
		}
		w.Header().Set("Warning", `299 - "from kube-apiserver"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"kind":"ConfigMap"}`)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL + "/prefix/")
	return u
}

func asUser(u user.Info, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u != nil {
			r = r.WithContext(apirequest.WithUser(r.Context(), u))
		}
		h.ServeHTTP(w, r)
	})
}

var alice = &user.DefaultInfo{Name: "alice", UID: "u-1", Groups: []string{"devs", user.AllAuthenticated},
	Extra: map[string][]string{"example.com/team name": {"a", "b"}}}

func TestPassThrough(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) }) // after the servers' Cleanup
	rt := &http.Transport{}
	t.Cleanup(rt.CloseIdleConnections)
	got := make(chan seen, 1)
	second := make(chan struct{})
	apiserver := fakeAPIServer(t, got, second)
	sessions := &fakeSessions{}
	route := withRequestInfo(&Handler{Pods: fakePods{}, Sessions: sessions, PassThrough: NewPassThrough(apiserver, rt)})

	t.Run("a request goes on as the user, with only its own headers", func(t *testing.T) {
		req := httptest.NewRequest("POST", api.RoutePrefix+"/api/v1/namespaces/ns/configmaps?fieldManager=kubectl&dryRun=All", strings.NewReader(`{"data":{}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Audit-Id", "a-1")
		req.Header.Set("Kubectl-Command", "kubectl create")
		for _, forged := range []string{"Authorization", "X-Remote-User", "X-Remote-Group", "Impersonate-User", "Impersonate-Group", "Impersonate-Extra-Scopes", "X-Forwarded-For", "Cookie"} {
			req.Header.Set(forged, "mallory")
		}
		rec := httptest.NewRecorder()
		asUser(alice, route).ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated || rec.Body.String() != `{"kind":"ConfigMap"}` || rec.Header().Get("Warning") != `299 - "from kube-apiserver"` {
			t.Fatalf("got %d %v %s", rec.Code, rec.Header(), rec.Body)
		}
		s := <-got
		if s.method != "POST" || s.path != "/prefix/api/v1/namespaces/ns/configmaps" || s.query != "fieldManager=kubectl&dryRun=All" || s.body != `{"data":{}}` {
			t.Errorf("kube-apiserver was sent %+v", s)
		}
		want := map[string][]string{
			"Impersonate-User": {"alice"}, "Impersonate-Uid": {"u-1"}, "Impersonate-Group": {"devs", user.AllAuthenticated},
			"Impersonate-Extra-Example.com%2fteam%20name": {"a", "b"},
			"Content-Type": {"application/json"}, "Audit-Id": {"a-1"}, "Kubectl-Command": {"kubectl create"},
		}
		for name, values := range want {
			if g := s.header.Values(name); strings.Join(g, ",") != strings.Join(values, ",") {
				t.Errorf("header %s = %q, want %q (all: %v)", name, g, values, s.header)
			}
		}
		for name, values := range s.header {
			if strings.Contains(strings.Join(values, ","), "mallory") {
				t.Errorf("the client's %s reached kube-apiserver", name)
			}
		}
	})
	t.Run("a request's trailers stay behind", func(t *testing.T) {
		srv := httptest.NewServer(asUser(alice, route))
		defer srv.Close()
		req, _ := http.NewRequest("POST", srv.URL+api.RoutePrefix+"/api/v1/namespaces/ns/configmaps", io.MultiReader(strings.NewReader("{}")))
		req.Trailer = http.Header{"Impersonate-User": {"mallory"}, "Audit-Id": {"mallory"}}
		resp, err := (&http.Client{Transport: rt}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if s := <-got; s.body != "{}" || len(s.trailer) > 0 {
			t.Errorf("kube-apiserver was sent %q and the trailers %v", s.body, s.trailer)
		}
	})
	t.Run("discovery and OpenAPI go on", func(t *testing.T) {
		for _, path := range []string{"/api", "/apis/", "/openapi/v3", "/version", ""} {
			rec := httptest.NewRecorder()
			asUser(alice, route).ServeHTTP(rec, httptest.NewRequest("GET", api.RoutePrefix+path, nil))
			want := "/prefix" + path
			if path == "" {
				want = "/prefix/"
			}
			if s := <-got; rec.Code != http.StatusCreated || s.path != want {
				t.Errorf("%s: got %d, kube-apiserver was sent %q", path, rec.Code, s.path)
			}
		}
	})
	t.Run("an escaped path stays escaped", func(t *testing.T) {
		rec := httptest.NewRecorder()
		asUser(alice, route).ServeHTTP(rec, httptest.NewRequest("GET", api.RoutePrefix+"/api/v1/namespaces/ns/configmaps/a%2Fb", nil))
		if s := <-got; s.path != "/prefix/api/v1/namespaces/ns/configmaps/a/b" || s.rawPath != "/prefix/api/v1/namespaces/ns/configmaps/a%2Fb" {
			t.Errorf("kube-apiserver was sent %q (raw %q)", s.path, s.rawPath)
		}
	})
	t.Run("a watch streams", func(t *testing.T) {
		srv := httptest.NewServer(asUser(alice, route))
		defer srv.Close()
		resp, err := (&http.Client{Transport: rt}).Get(srv.URL + api.LegacyRoutePrefix + "/api/v1/namespaces/ns/pods/watch")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		<-got
		r := bufio.NewReader(resp.Body)
		if line, err := r.ReadString('\n'); line != "first\n" || err != nil {
			t.Fatalf("first line %q, %v", line, err)
		}
		close(second) // sent only now: the first line came while kube-apiserver still held the rest
		if rest, _ := io.ReadAll(r); string(rest) != "second\n" {
			t.Errorf("then %q", rest)
		}
	})
	t.Run("sessions are served, not passed", func(t *testing.T) {
		rec := httptest.NewRecorder()
		asUser(alice, route).ServeHTTP(rec, httptest.NewRequest("POST", api.RoutePrefix+"/api/v1/namespaces/ns/pods/p/exec?command=ls&stdout=true", nil))
		if rec.Code != 200 || sessions.got == nil || sessions.got.Pod != "p" {
			t.Errorf("got %d, session %+v", rec.Code, sessions.got)
		}
		rec = httptest.NewRecorder()
		asUser(alice, route).ServeHTTP(rec, httptest.NewRequest("POST", api.RoutePrefix+"/api/v1/namespaces/ns/pods/p/exec/x?command=ls", nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("a path after exec: got %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("an upgrade that opens no session", func(t *testing.T) {
		req := httptest.NewRequest("GET", api.RoutePrefix+"/api/v1/namespaces/ns/pods/p/proxy/", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		rec := httptest.NewRecorder()
		asUser(alice, route).ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "opens no session") {
			t.Errorf("got %d %s", rec.Code, rec.Body)
		}
	})
	for name, u := range map[string]user.Info{
		"no user":                            nil,
		"anonymous":                          &user.DefaultInfo{Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}},
		"a user not in system:authenticated": &user.DefaultInfo{Name: "bob", Groups: []string{"devs"}},
	} {
		t.Run(name+" is not passed on", func(t *testing.T) {
			rec := httptest.NewRecorder()
			asUser(u, route).ServeHTTP(rec, httptest.NewRequest("GET", api.RoutePrefix+"/api/v1/namespaces", nil))
			var st metav1.Status
			if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || rec.Code != http.StatusUnauthorized || st.Code != http.StatusUnauthorized {
				t.Errorf("got %d %s", rec.Code, rec.Body)
			}
		})
	}
	t.Run("kube-apiserver gone", func(t *testing.T) {
		down, _ := url.Parse("http://127.0.0.1:1")
		h := withRequestInfo(&Handler{PassThrough: NewPassThrough(down, rt)})
		rec := httptest.NewRecorder()
		asUser(alice, h).ServeHTTP(rec, httptest.NewRequest("GET", api.RoutePrefix+"/api/v1/namespaces", nil))
		var st metav1.Status
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || rec.Code != http.StatusServiceUnavailable || !strings.Contains(st.Message, "could not pass the request to kube-apiserver") {
			t.Errorf("got %d %s", rec.Code, rec.Body)
		}
	})
}

// TestPassedThrough: exec-proxy's authorizer leaves to kube-apiserver exactly what the handler
// passes on, from the same parse of the same path; never an impersonation check, which has no path.
func TestPassedThrough(t *testing.T) {
	cases := []struct {
		method, path string
		want         bool
	}{
		{"GET", api.RoutePrefix + "/api/v1/namespaces/ns/pods", true},
		{"GET", api.RoutePrefix + "/api/v1/namespaces/ns/pods/p/log", true},
		{"GET", api.RoutePrefix + "/apis/apps/v1/namespaces/ns/deployments/web", true},
		{"GET", api.LegacyRoutePrefix + "/api", true},
		{"POST", api.RoutePrefix + "/apis/execproxy.dev/v1alpha1/namespaces/ns/pods/p/exec", true}, // exec-proxy's own API, reached through kube-apiserver
		{"POST", api.RoutePrefix + "/api/v1/namespaces/ns/pods/p/exec", false},
		{"GET", api.RoutePrefix + "/api/v1/namespaces/ns/pods/p/attach", false},
		{"POST", api.LegacyRoutePrefix + "/api/v1/namespaces/ns/pods/p/portforward", false},
		{"PATCH", api.RoutePrefix + "/api/v1/namespaces/ns/pods/p/ephemeralcontainers", false},
		{"POST", api.RoutePrefix + "/api/v1/namespaces/ns/pods/p/exec/x", false},
		{"GET", "/apis/execproxy.dev/v1alpha1/execsessions", false},
		{"GET", "/api/v1/namespaces/ns/pods", false},
	}
	// passedThrough is PassedThrough's answer for req, as the handler chain asks it.
	passedThrough := func(req *http.Request) bool {
		var attrs authorizer.Attributes
		var ctx context.Context
		h := WithRouteRequests(genericapifilters.WithRequestInfo(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			attrs, _ = genericapifilters.GetAuthorizerAttributes(r.Context())
			ctx = r.Context()
		}), testResolver))
		h.ServeHTTP(httptest.NewRecorder(), req)
		return PassedThrough(ctx, attrs)
	}
	for _, tc := range cases {
		if got := passedThrough(httptest.NewRequest(tc.method, tc.path, nil).WithContext(apirequest.WithUser(context.Background(), alice))); got != tc.want {
			t.Errorf("%s %s: %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
	anonymous := &user.DefaultInfo{Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}}
	for _, u := range []user.Info{anonymous, nil} {
		req := httptest.NewRequest("GET", api.RoutePrefix+"/api/v1/namespaces/ns/pods", nil)
		if u != nil {
			req = req.WithContext(apirequest.WithUser(req.Context(), u))
		}
		if passedThrough(req) {
			t.Errorf("%v: left to kube-apiserver, not refused here as anyone else", u)
		}
	}
	impersonate := authorizer.AttributesRecord{User: alice, Verb: "impersonate", Resource: "users", Name: "admin", ResourceRequest: true}
	// In the very context of a request that is passed through, as the impersonation filter asks.
	routeCtx := context.WithValue(context.Background(), routeRequestKey{}, true)
	routeCtx = apirequest.WithRequestInfo(routeCtx, &apirequest.RequestInfo{IsResourceRequest: true, Verb: "get", Resource: "users", Name: "admin"})
	if PassedThrough(routeCtx, impersonate) {
		t.Error("an impersonation check was left to kube-apiserver")
	}
}

// TestLongRunningCap: a user's long-running pass-throughs are bounded at once, not those of others,
// and a slot comes back when one ends.
func TestLongRunningCap(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	started := make(chan struct{}, 4)
	apiserver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		if r.URL.Query().Get("watch") == "true" {
			w.(http.Flusher).Flush()
			started <- struct{}{}
			<-r.Context().Done() // a watch: open until the client goes
		}
	}))
	t.Cleanup(apiserver.Close)
	host, _ := url.Parse(apiserver.URL)
	rt := &http.Transport{}
	t.Cleanup(rt.CloseIdleConnections)
	watches := func(_ *http.Request, info *apirequest.RequestInfo) bool { return info.Verb == "watch" }
	route := withRequestInfo(&Handler{Pods: fakePods{}, Sessions: &fakeSessions{}, PassThrough: NewPassThrough(host, rt).WithLongRunningCap(2, watches)})
	bob := &user.DefaultInfo{Name: "bob", Groups: []string{user.AllAuthenticated}}
	const watch = api.RoutePrefix + "/api/v1/namespaces/ns/pods?watch=true"

	open := func(u user.Info) (context.CancelFunc, chan int) {
		ctx, cancel := context.WithCancel(context.Background())
		code := make(chan int, 1)
		go func() {
			rec := httptest.NewRecorder()
			asUser(u, route).ServeHTTP(rec, httptest.NewRequest("GET", watch, nil).WithContext(ctx))
			code <- rec.Code
		}()
		return cancel, code
	}
	var cancels []context.CancelFunc
	var codes []chan int
	for i := 0; i < 2; i++ {
		cancel, code := open(alice)
		cancels, codes = append(cancels, cancel), append(codes, code)
		<-started
	}
	cancelThird, third := open(alice)
	select {
	case <-started:
		t.Error("alice's third watch reached kube-apiserver")
		cancelThird()
		<-third
	case c := <-third:
		if c != http.StatusTooManyRequests {
			t.Errorf("alice's third watch: %d, want 429", c)
			break
		}
		// Refused at once (the cap holds), so asked again without a goroutine: the 429 names the flag.
		rec := httptest.NewRecorder()
		asUser(alice, route).ServeHTTP(rec, httptest.NewRequest("GET", watch, nil))
		if !strings.Contains(rec.Body.String(), "long-running requests (watches, logs, proxy)") || !strings.Contains(rec.Body.String(), "(--route-max-long-running-requests-per-user)") {
			t.Errorf("alice's fourth watch: %d %s, want the cap's flag named", rec.Code, rec.Body)
		}
	}
	cancelThird()
	rec := httptest.NewRecorder()
	asUser(alice, route).ServeHTTP(rec, httptest.NewRequest("GET", api.RoutePrefix+"/api/v1/namespaces/ns/pods", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("alice's list beside her watches: %d %s", rec.Code, rec.Body)
	}
	// Admitted is kube-apiserver's seeing it (started); a refusal never gets there, and answers
	// at once instead.
	waitStarted := func(who string, code chan int) {
		select {
		case <-started:
		case c := <-code:
			t.Fatalf("%s's watch was answered %d", who, c)
		}
	}
	cancelBob, bobCode := open(bob)
	waitStarted("bob, beside alice's two,", bobCode)
	cancels[0]() // alice's first watch ends: her slot comes back
	<-codes[0]
	cancel, code := open(alice)
	waitStarted("alice, after one of hers ended,", code)
	for _, c := range append(cancels[1:], cancel, cancelBob) {
		c()
	}
	<-code
	<-bobCode
	<-codes[1]
}

// TestPassThroughLogsStructured: when kube-apiserver's answer breaks off mid-body (it restarts
// during a watch), what ReverseProxy has to say goes to klog with key/values, not to the standard
// logger as a bare line.
func TestPassThroughLogsStructured(t *testing.T) {
	var std strings.Builder
	log.SetOutput(&std)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
	klog.SetLogger(logger)
	t.Cleanup(klog.ClearLogger)

	apiserver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
		_ = buf.Flush()
	}))
	t.Cleanup(apiserver.Close)
	host, _ := url.Parse(apiserver.URL)
	rt := &http.Transport{}
	t.Cleanup(rt.CloseIdleConnections)
	route := withRequestInfo(&Handler{PassThrough: NewPassThrough(host, rt)})
	asUser(alice, route).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", api.RoutePrefix+"/api/v1/namespaces/ns/pods", nil))

	if std.Len() > 0 {
		t.Errorf("the standard logger got %q", std.String())
	}
	if got := logger.GetSink().(ktesting.Underlier).GetBuffer().String(); !strings.Contains(got, "unexpected EOF") {
		t.Errorf("klog got %q, want the broken body's error", got)
	}
}

// TestPassThroughClientGone: a client that goes before kube-apiserver answers (kubectl interrupted)
// is no error of exec-proxy's: it is not logged as one.
func TestPassThroughClientGone(t *testing.T) {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), logger))
	cancel()
	rt := &http.Transport{}
	t.Cleanup(rt.CloseIdleConnections)
	down, _ := url.Parse("http://127.0.0.1:1")
	route := withRequestInfo(&Handler{PassThrough: NewPassThrough(down, rt)})
	asUser(alice, route).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", api.RoutePrefix+"/api/v1/namespaces", nil).WithContext(ctx))
	entries := logger.GetSink().(ktesting.Underlier).GetBuffer().Data()
	for _, e := range entries {
		if e.Type == ktesting.LogError {
			t.Errorf("logged as an error: %s: %v", e.Message, e.Err)
		}
	}
	if len(entries) == 0 {
		t.Error("nothing logged")
	}
}
