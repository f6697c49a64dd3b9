package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	utilexec "k8s.io/client-go/util/exec"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

func TestSessionConfig(t *testing.T) {
	const route = "https://k8s.example:6443" + api.RoutePrefix
	cases := []struct {
		name, host, reason, path, query string
		wantHost, wantQuery             string
	}{
		{"exec, direct context", "https://k8s.example:6443", "TICKET-1", "/api/v1/namespaces/ns/pods/p/exec",
			"command=ls&command=-l&stdout=true", route, "command=ls&command=-l&stdout=true&reason=TICKET-1"},
		{"attach, trailing slash", "https://k8s.example:6443/", "TICKET-1", "/api/v1/namespaces/ns/pods/p/attach",
			"stdout=true", route, "stdout=true&reason=TICKET-1"},
		{"portforward, route context", route, "TICKET-1", "/api/v1/namespaces/ns/pods/p/portforward",
			"", route, "reason=TICKET-1"},
		{"reason escaped", route, "T 1&x=y", "/api/v1/namespaces/ns/pods/p/exec",
			"command=sh", route, "command=sh&reason=T+1%26x%3Dy"},
		{"no reason", route, "", "/api/v1/namespaces/ns/pods/p/exec", "command=sh", route, "command=sh"},
		{"pod read", route, "TICKET-1", "/api/v1/namespaces/ns/pods/p", "", route, ""},
		{"pod named exec", route, "TICKET-1", "/api/v1/namespaces/ns/pods/exec", "", route, ""},
		{"discovery", route, "TICKET-1", "/api/v1", "", route, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sessionConfig(&rest.Config{Host: tc.host}, tc.reason)
			if cfg.Host != tc.wantHost {
				t.Errorf("host %q, want %q", cfg.Host, tc.wantHost)
			}
			var sent *http.Request
			var rt http.RoundTripper = roundTripperFunc(func(req *http.Request) (*http.Response, error) {
				sent = req
				return &http.Response{StatusCode: http.StatusOK}, nil
			})
			if cfg.WrapTransport != nil {
				rt = cfg.WrapTransport(rt)
			}
			req := httptest.NewRequest(http.MethodPost, cfg.Host+tc.path+"?"+tc.query, nil)
			if _, err := rt.RoundTrip(req); err != nil {
				t.Fatal(err)
			}
			if sent.URL.RawQuery != tc.wantQuery || sent.URL.Path != req.URL.Path {
				t.Errorf("sent %s, want query %q", sent.URL, tc.wantQuery)
			}
			if req.URL.RawQuery != tc.query {
				t.Errorf("the caller's request changed: %s", req.URL)
			}
		})
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// fakeRoute stands in for exec-proxy's route: discovery, GET of a running pod, and every session
// refused with a 403 Status after its request is recorded.
type fakeRoute struct {
	mu       sync.Mutex
	sessions []string // method, Upgrade header, path and query of each session's request
	stray    []string // requests not under the route
}

func (f *fakeRoute) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, api.RoutePrefix)
	if !ok {
		f.mu.Lock()
		f.stray = append(f.stray, r.URL.String())
		f.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	parts := strings.Split(path, "/") // "", api, v1, namespaces, NS, pods, NAME[, SUBRESOURCE]
	switch {
	case path == "/api":
		writeJSON(w, http.StatusOK, &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
	case path == "/apis":
		writeJSON(w, http.StatusOK, &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}})
	case path == "/api/v1":
		writeJSON(w, http.StatusOK, &metav1.APIResourceList{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "pods", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"get", "list"}},
		}})
	case isSession(path):
		f.mu.Lock()
		f.sessions = append(f.sessions, fmt.Sprintf("%s %s %s?%s", r.Method, r.Header.Get("Upgrade"), path, r.URL.RawQuery))
		f.mu.Unlock()
		writeJSON(w, http.StatusForbidden, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status: metav1.StatusFailure, Message: "denied by test", Reason: metav1.StatusReasonForbidden, Code: http.StatusForbidden})
	case r.Method == http.MethodGet && len(parts) == 7 && parts[3] == "namespaces" && parts[5] == "pods":
		writeJSON(w, http.StatusOK, &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{Name: parts[6], Namespace: parts[4]},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning},
		})
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeKubeconfig writes a kubeconfig whose current context leads nowhere and whose context "test"
// is a direct one to server, namespace ns.
func writeKubeconfig(t *testing.T, server string) string {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	err := clientcmd.WriteToFile(clientcmdapi.Config{
		CurrentContext: "nowhere",
		Clusters: map[string]*clientcmdapi.Cluster{
			"test":    {Server: server, InsecureSkipTLSVerify: true},
			"nowhere": {Server: "https://127.0.0.1:1"},
		},
		AuthInfos: map[string]*clientcmdapi.AuthInfo{"alice": {Token: "t"}},
		Contexts: map[string]*clientcmdapi.Context{
			"test":    {Cluster: "test", AuthInfo: "alice", Namespace: "ns"},
			"nowhere": {Cluster: "nowhere", AuthInfo: "alice"},
		},
	}, path)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// The plugin's commands, run as a user would, reach the route with the reason on the session's URL
// (over WebSocket, then over SPDY when kubectl falls back) and fail with the route's Status.
func TestSessionCommands(t *testing.T) {
	const (
		wsExec   = "GET websocket /api/v1/namespaces/ns/pods/p/exec?command=ls&command=-l&container=c&stderr=true&stdout=true"
		spdyExec = "POST SPDY/3.1 /api/v1/namespaces/ns/pods/p/exec?command=ls&command=-l&container=c&stderr=true&stdout=true"
		attachQ  = "/api/v1/namespaces/ns/pods/p/attach?container=c&stderr=true&stdout=true"
		pfPath   = "/api/v1/namespaces/ns2/pods/p/portforward"
	)
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"exec, WebSocket then SPDY", nil,
			[]string{"--context", "test", "exec", "--reason", "TICKET-1", "p", "--", "ls", "-l"},
			[]string{wsExec + "&reason=TICKET-1", spdyExec + "&reason=TICKET-1"}},
		{"exec, SPDY only", map[string]string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"},
			[]string{"--context", "test", "exec", "--reason", "TICKET-1", "p", "--", "ls", "-l"},
			[]string{spdyExec + "&reason=TICKET-1"}},
		{"exec, no reason", nil,
			[]string{"--context", "test", "exec", "p", "--", "ls", "-l"},
			[]string{wsExec, spdyExec}},
		{"exec, empty reason", nil,
			[]string{"--context", "test", "exec", "--reason", "", "p", "--", "ls", "-l"},
			[]string{wsExec, spdyExec}},
		{"attach, --context after the command", nil,
			[]string{"attach", "--context", "test", "--reason", "TICKET-1", "-q", "p"},
			[]string{"GET websocket " + attachQ + "&reason=TICKET-1", "POST SPDY/3.1 " + attachQ + "&reason=TICKET-1"}},
		{"port-forward, kubectl's -n", nil,
			[]string{"--context", "test", "port-forward", "--reason", "TICKET-1", "-n", "ns2", "p", ":80"},
			[]string{"GET websocket " + pfPath + "?reason=TICKET-1", "POST SPDY/3.1 " + pfPath + "?reason=TICKET-1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			t.Setenv("KUBECACHEDIR", t.TempDir())
			route := &fakeRoute{}
			srv := httptest.NewTLSServer(route)
			defer srv.Close()

			var out, errOut bytes.Buffer
			cmd := NewCommand(&out)
			cmd.SetErr(&errOut)
			cmd.SetArgs(append([]string{"--kubeconfig", writeKubeconfig(t, srv.URL)}, tc.args...))
			err := cmd.Execute()

			var exit *ExitError
			if !errors.As(err, &exit) || exit.Code != 1 || !strings.Contains(exit.Message, "denied by test") {
				t.Errorf("error %v, want kubectl's exit 1 with the route's Status", err)
			}
			route.mu.Lock()
			defer route.mu.Unlock()
			if strings.Join(route.sessions, "\n") != strings.Join(tc.want, "\n") || len(route.stray) != 0 {
				t.Errorf("sessions\n%s\nwant\n%s\nnot under the route: %q", strings.Join(route.sessions, "\n"), strings.Join(tc.want, "\n"), route.stray)
			}
		})
	}
}

// kubectl's way out of a command, cmdutil.CheckErr, becomes an *ExitError with kubectl's message and
// exit code, and nothing after the failed step runs.
func TestRunKubectl(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want *ExitError
	}{
		{"success", nil, nil},
		{"error", errors.New("boom"), &ExitError{"error: boom", 1}},
		{"remote exit code", utilexec.CodeExitError{Err: errors.New("command terminated with exit code 3"), Code: 3},
			&ExitError{"command terminated with exit code 3", 3}},
		{"Status", apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "p", errors.New("denied")),
			&ExitError{`Error from server (Forbidden): pods "p" is forbidden: denied`, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			steps := 0
			err := runKubectl(func(*cobra.Command, []string) {
				cmdutil.CheckErr(tc.err)
				steps++
				cmdutil.CheckErr(nil)
				steps++
			}, nil, nil)
			var exit *ExitError
			switch {
			case tc.want == nil && (err != nil || steps != 2):
				t.Errorf("error %v after %d steps, want none after 2", err, steps)
			case tc.want != nil && (!errors.As(err, &exit) || *exit != *tc.want || steps != 0):
				t.Errorf("error %#v after %d steps, want %#v after 0", err, steps, tc.want)
			}
		})
	}
}
