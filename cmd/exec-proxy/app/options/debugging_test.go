package options

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/rest"
	basecompatibility "k8s.io/component-base/compatibility"
	baseversion "k8s.io/component-base/version"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

// /debug/pprof and /debug/flags/v (which raises the log verbosity at run time) are not served
// unless --profiling; with it they are.
func TestDebugHandlers(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		found bool
	}{
		{"default", nil, false},
		{"--profiling", []string{"--profiling"}, true},
		{"--profiling=false", []string{"--profiling=false", "--contention-profiling"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			fss := o.Flags()
			if err := fss.FlagSet("debugging").Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			generic := genericapiserver.NewConfig(api.Codecs)
			generic.EffectiveVersion = basecompatibility.NewEffectiveVersionFromString(baseversion.DefaultKubeBinaryVersion, "", "")
			generic.EnableIndex = false
			generic.ExternalAddress = "127.0.0.1:8443" // no listener in this test
			generic.LoopbackClientConfig = &rest.Config{Host: "https://127.0.0.1:8443"}
			o.Debugging.ApplyTo(generic)
			s, err := generic.Complete(nil).New("test", genericapiserver.NewEmptyDelegate())
			if err != nil {
				t.Fatal(err)
			}
			for _, req := range []struct{ method, path, body string }{
				{http.MethodGet, "/debug/pprof/", ""},
				{http.MethodGet, "/debug/pprof/heap", ""},
				{http.MethodGet, "/debug/flags/v", ""},
				{http.MethodPut, "/debug/flags/v", "0"},
			} {
				rec := httptest.NewRecorder()
				s.Handler.ServeHTTP(rec, httptest.NewRequest(req.method, req.path, strings.NewReader(req.body)))
				if found := rec.Code != http.StatusNotFound; found != tc.found {
					t.Errorf("%s %s: %d, want served %v", req.method, req.path, rec.Code, tc.found)
				}
			}
		})
	}
}
