package options

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/rest"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

// TestPassThroughHTTP11: the route passes requests on over HTTP/1.1 even to a kube-apiserver that
// speaks HTTP/2, whose streams would each buffer megabytes of a slowly read watch in exec-proxy.
func TestPassThroughHTTP11(t *testing.T) {
	protos := make(chan string, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { protos <- r.Proto }))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	for _, cfg := range []*rest.Config{
		{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}},
		{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true, NextProtos: []string{"h2", "http/1.1"}}},
	} {
		p, err := (&RouteOptions{PassThrough: true}).ToPassThrough(cfg)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("GET", api.RoutePrefix+"/api", nil)
		req = req.WithContext(apirequest.WithUser(req.Context(), &user.DefaultInfo{Name: "alice", Groups: []string{user.AllAuthenticated}}))
		p.ServeHTTP(httptest.NewRecorder(), req)
		if got := <-protos; got != "HTTP/1.1" {
			t.Errorf("NextProtos %v: passed on over %s", cfg.NextProtos, got)
		}
	}
	if p, err := (&RouteOptions{}).ToPassThrough(&rest.Config{Host: srv.URL}); p != nil || err != nil {
		t.Errorf("turned off: %v, %v", p, err)
	}
}
