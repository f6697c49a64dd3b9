package apiserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/registry/rest"
	clientfake "k8s.io/client-go/kubernetes/fake"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/registry/execlock"
)

// TestExecLocksServed: execlocks are served through the generic server as kubectl execproxy sends
// them: created from a JSON body (the locker is the request's user, alice here), got, listed as a
// table and deleted.
func TestExecLocksServed(t *testing.T) {
	storage := map[string]rest.Storage{"execlocks": execlock.NewREST(clientfake.NewClientset(), "execproxy-system")}
	chain := newChainWith(t, &events{}, &reached{}, storage)
	const base = "https://exec-proxy/apis/execproxy.dev/v1alpha1/execlocks"
	do := func(method, path, body, accept string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		w := httptest.NewRecorder()
		chain.ServeHTTP(w, req)
		return w
	}
	steps := []struct {
		method, path, body, accept string
		code                       int
		has                        string
	}{
		{"POST", "", `{"apiVersion":"execproxy.dev/v1alpha1","kind":"ExecLock","metadata":{"name":"user-bob"},"spec":{"user":"bob","reason":"INC-42"},"status":{"lockedBy":"mallory"}}`, "",
			http.StatusCreated, `"lockedBy":"alice"`},
		{"POST", "", `{"apiVersion":"execproxy.dev/v1alpha1","kind":"ExecLock","metadata":{"name":"user-eve"},"spec":{"user":"bob"}}`, "",
			http.StatusUnprocessableEntity, "must be user-bob"},
		{"GET", "/user-bob", "", "", http.StatusOK, `"reason":"INC-42"`},
		{"GET", "", "", "application/json;as=Table;v=v1;g=meta.k8s.io", http.StatusOK, `"cells":["user-bob","bob","","INC-42","alice"`},
		{"DELETE", "/user-bob", "", "", http.StatusOK, `"name":"user-bob"`},
		{"GET", "/user-bob", "", "", http.StatusNotFound, `execlocks.execproxy.dev \"user-bob\" not found`},
	}
	for _, st := range steps {
		w := do(st.method, st.path, st.body, st.accept)
		if w.Code != st.code || !strings.Contains(w.Body.String(), st.has) {
			t.Errorf("%s %s: %d %s, want %d with %s", st.method, st.path, w.Code, w.Body, st.code, st.has)
		}
		if w.Code == http.StatusCreated {
			var l api.ExecLock
			if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil || l.Kind != "ExecLock" || l.Status.LockedAt.IsZero() {
				t.Errorf("created: %+v %v", l, err)
			}
		}
	}
}
