package app

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

func kubeconfig() *clientcmdapi.Config {
	return &clientcmdapi.Config{
		CurrentContext: "prod",
		Clusters: map[string]*clientcmdapi.Cluster{
			"c1":    {Server: "https://k8s.example:6443/", CertificateAuthorityData: []byte("CA")},
			"route": {Server: "https://k8s.example:6443" + api.RoutePrefix},
			"old":   {Server: "https://k8s.example:6443" + api.LegacyRoutePrefix + "/"},
		},
		AuthInfos: map[string]*clientcmdapi.AuthInfo{"alice": {Token: "t"}},
		Contexts: map[string]*clientcmdapi.Context{
			"prod":    {Cluster: "c1", AuthInfo: "alice", Namespace: "web"},
			"routed":  {Cluster: "route", AuthInfo: "alice"},
			"legacy":  {Cluster: "old", AuthInfo: "alice"},
			"dangles": {Cluster: "nope", AuthInfo: "alice"},
		},
	}
}

func TestRouteContext(t *testing.T) {
	cases := []struct {
		name, from, want, err string
	}{
		{"current context", "", "prod-execproxy", ""},
		{"named context", "prod", "prod-execproxy", ""},
		{"unknown context", "dev", "", `no context "dev"`},
		{"cluster missing", "dangles", "", `cluster "nope"`},
		{"already routed", "routed", "", "goes through exec-proxy already"},
		{"routed by the legacy path", "legacy", "", "goes through exec-proxy already"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := kubeconfig()
			name, err := routeContext(raw, tc.from)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || name != tc.want {
				t.Fatalf("got %q, %v", name, err)
			}
			ctx := raw.Contexts[name]
			cluster := raw.Clusters[ctx.Cluster]
			if cluster.Server != "https://k8s.example:6443"+api.RoutePrefix || string(cluster.CertificateAuthorityData) != "CA" ||
				ctx.AuthInfo != "alice" || ctx.Namespace != "web" || raw.Clusters["c1"].Server != "https://k8s.example:6443/" {
				t.Errorf("context %+v, cluster %+v", ctx, cluster)
			}
		})
	}
}

// TestMoveLegacy: setup moves clusters on the route's legacy path (whose sessions hold kube-apiserver
// seats) to the route, and leaves the others alone.
func TestMoveLegacy(t *testing.T) {
	raw := kubeconfig()
	if moved := moveLegacy(raw); len(moved) != 1 || moved[0] != "old" {
		t.Fatalf("moved %v, want [old]", moved)
	}
	want := map[string]string{"c1": "https://k8s.example:6443/", "route": "https://k8s.example:6443" + api.RoutePrefix, "old": "https://k8s.example:6443" + api.RoutePrefix}
	for name, server := range want {
		if got := raw.Clusters[name].Server; got != server {
			t.Errorf("cluster %s: server %s, want %s", name, got, server)
		}
	}
	if moved := moveLegacy(raw); len(moved) != 0 {
		t.Errorf("moved %v again", moved)
	}
	for _, server := range []string{"https://k8s.example:6443" + api.RoutePrefix, "https://k8s.example:6443" + api.LegacyRoutePrefix + "/", "https://k8s.example:6443"} {
		if base, _ := apiServer(server); base != "https://k8s.example:6443" {
			t.Errorf("apiServer(%s) = %s", server, base)
		}
	}
}

func TestReplay(t *testing.T) {
	cast := `{"version": 2, "width": 80, "height": 24}
[0.1, "o", "hello "]
[0.2, "i", "typed"]
[0.3, "r", "100x40"]
[0.4, "o", "world\n"]
`
	cases := []struct {
		name, in, want, err string
	}{
		{"output only, in order", cast, "hello world\n", ""},
		{"not asciicast v2", `{"version": 1}` + "\n", "", "not asciicast v2"},
		{"empty", "", "", "no header"},
		{"bad event", `{"version": 2}` + "\n[oops\n", "", "event"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := replay(context.Background(), strings.NewReader(tc.in), &out, 100) // 4 ms in all
			if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) || out.String() != tc.want {
				t.Errorf("output %q, error %v; want %q, %q", out.String(), err, tc.want, tc.err)
			}
		})
	}
}

func TestPrintSessions(t *testing.T) {
	now := time.Now()
	var out bytes.Buffer
	printSessions(&out, []api.ExecSession{{
		ObjectMeta: metav1.ObjectMeta{Name: "s1", Namespace: "web"},
		Spec:       api.ExecSessionSpec{User: "alice", Type: "exec", Pod: "p", Container: "c", Command: []string{"sh", "-c", "ls"}},
		Status:     api.ExecSessionStatus{StartTime: metav1.NewTime(now.Add(-90 * time.Second)), BytesIn: 3, BytesOut: 40, Phase: api.PhaseRunning},
	}, {
		ObjectMeta: metav1.ObjectMeta{Name: "s2", Namespace: "prod"},
		Spec:       api.ExecSessionSpec{User: "amy", Type: "exec", Pod: "q", Container: "c", Command: []string{"sh"}},
		Status: api.ExecSessionStatus{StartTime: metav1.NewTime(now.Add(-5 * time.Second)), Phase: api.PhaseWaitingForModerator,
			Moderators: []string{"bob", "carol"}},
	}}, now)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[1]), " ") != "s1 web alice exec p c sh -c ls 90s 3 40 Running <none>" ||
		strings.Join(strings.Fields(lines[2]), " ") != "s2 prod amy exec q c sh 5s 0 0 WaitingForModerator bob,carol" {
		t.Errorf("table:\n%s", out.String())
	}
}

func TestEscapeTerminal(t *testing.T) {
	cases := []struct{ in, want string }{
		{"sh -c 'ls -l'", "sh -c 'ls -l'"},
		{"héllo wörld ✓", "héllo wörld ✓"},
		{"\x1b[2J\x1b]0;title\x07", `^[[2J^[]0;title\x07`}, // as cli-runtime: ESC is ^[
		{"a\rb", `a\rb`},                                 // as cli-runtime
		{"a\nb\tc\x00d\x7f", `a\nb\tc\x00d\x7f`},         // a row stays one row, a column one column
		{"\u009b31m", `\x9b31m`},                         // C1 CSI
		{"abc\u202edcba\u2028x", `abc\u202edcba\u2028x`}, // bidi override, line separator
		{"bad\xff\xc3utf8", `bad\xff\xc3utf8`},           // bytes that are not UTF-8
		{"\\x1b stays as typed", "\\x1b stays as typed"},
	}
	for _, tc := range cases {
		if got := EscapeTerminal(tc.in); got != tc.want {
			t.Errorf("EscapeTerminal(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A user's argv, user name or container cannot reach the admin's terminal as control sequences,
// nor forge a row of the table.
func TestPrintSessionsEscapes(t *testing.T) {
	now := time.Now()
	var out bytes.Buffer
	printSessions(&out, []api.ExecSession{{
		ObjectMeta: metav1.ObjectMeta{Name: "s1", Namespace: "web"},
		Spec: api.ExecSessionSpec{User: "mallory\x1b[8m", Type: "exec", Pod: "p", Container: "c\r",
			Command: []string{"sh", "-c", "x\ns2  web  root  exec  p  c  true  1s  0  0\x1b[2J"}},
		Status: api.ExecSessionStatus{StartTime: metav1.NewTime(now.Add(-90 * time.Second)), BytesIn: 3, BytesOut: 40},
	}}, now)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || strings.ContainsAny(out.String(), "\x1b\r") ||
		!strings.Contains(lines[1], `mallory^[[8m`) || !strings.Contains(lines[1], `sh -c x\ns2  web  root`) {
		t.Errorf("table:\n%q", out.String())
	}
}
