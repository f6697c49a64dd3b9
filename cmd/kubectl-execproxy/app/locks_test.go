package app

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

// fakeLocks stands in for exec-proxy's execlocks: it records each request and answers as the
// registry would, but for lock "user-mallory", which it refuses.
type fakeLocks struct {
	mu       sync.Mutex
	requests []string // method, path and body of each request
}

const locksPath = "/apis/execproxy.dev/v1alpha1/execlocks"

func (f *fakeLocks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+string(body)))
	f.mu.Unlock()
	expires := metav1.NewTime(time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))
	switch {
	case r.Method == http.MethodPost && r.URL.Path == locksPath:
		var l api.ExecLock
		_ = json.Unmarshal(body, &l)
		if l.Name == "user-mallory" {
			writeJSON(w, http.StatusForbidden, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
				Reason: metav1.StatusReasonForbidden, Code: http.StatusForbidden, Message: `execlocks.execproxy.dev is forbidden: User "bob" cannot create`})
			return
		}
		l.Status = api.ExecLockStatus{LockedBy: "sec"}
		if l.Spec.ExpirationSeconds != nil {
			l.Status.ExpirationTimestamp = &expires
		}
		writeJSON(w, http.StatusCreated, &l)
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, locksPath+"/"):
		writeJSON(w, http.StatusOK, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess})
	case r.Method == http.MethodGet && r.URL.Path == locksPath:
		writeJSON(w, http.StatusOK, &api.ExecLockList{TypeMeta: metav1.TypeMeta{Kind: "ExecLockList", APIVersion: api.SchemeGroupVersion.String()},
			Items: []api.ExecLock{{ObjectMeta: metav1.ObjectMeta{Name: "group-ops"}, Spec: api.ExecLockSpec{Group: "ops", Reason: "INC-42\x1b[2J"},
				Status: api.ExecLockStatus{LockedBy: "sec", LockedAt: metav1.NewTime(time.Now().Add(-time.Hour))}}}})
	default:
		http.NotFound(w, r)
	}
}

func TestLockCommands(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		request string
		out     string // a line of the output
		err     string
	}{
		{"lock a user for a while", []string{"lock", "alice", "--reason", "INC-42", "--for", "90m"},
			`POST ` + locksPath + ` {"kind":"ExecLock","apiVersion":"execproxy.dev/v1alpha1","metadata":{"name":"user-alice"},` +
				`"spec":{"user":"alice","reason":"INC-42","expirationSeconds":5400}}`,
			"execlock user-alice set, until ", ""},
		{"lock a group until unlocked", []string{"lock", "group:ops"},
			`POST ` + locksPath + ` {"kind":"ExecLock","apiVersion":"execproxy.dev/v1alpha1","metadata":{"name":"group-ops"},` +
				`"spec":{"group":"ops"}}`,
			"execlock group-ops set, until unlocked", ""},
		{"a refused lock", []string{"lock", "mallory"}, "POST " + locksPath, "", `locking mallory: execlocks.execproxy.dev is forbidden`},
		{"no group", []string{"lock", "group:"}, "", "", `no user or group in "group:"`},
		{"a negative time", []string{"lock", "alice", "--for", "-1h"}, "", "", "--for must not be negative"},
		{"unlock a user", []string{"unlock", "alice"}, "DELETE " + locksPath + "/user-alice", "execlock user-alice removed", ""},
		{"unlock a group", []string{"unlock", "group:ops"}, "DELETE " + locksPath + "/group-ops", "execlock group-ops removed", ""},
		{"list", []string{"locks"}, "GET " + locksPath, `group-ops  ops  INC-42^[[2J  sec  60m  <none>`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KUBECACHEDIR", t.TempDir())
			server := &fakeLocks{}
			srv := httptest.NewTLSServer(server)
			defer srv.Close()
			var out bytes.Buffer
			cmd := NewCommand(&out)
			cmd.SetErr(io.Discard)
			cmd.SetArgs(append([]string{"--kubeconfig", writeKubeconfig(t, srv.URL), "--context", "test"}, tc.args...))
			err := cmd.Execute()
			if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			server.mu.Lock()
			defer server.mu.Unlock()
			if got := strings.Join(server.requests, "\n"); (tc.request == "") != (got == "") || !strings.HasPrefix(got, tc.request) {
				t.Errorf("requests\n%s\nwant\n%s", got, tc.request)
			}
			if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), strings.Join(strings.Fields(tc.out), " ")) {
				t.Errorf("output\n%s\nwant a line with %q", out.String(), tc.out)
			}
		})
	}
}
