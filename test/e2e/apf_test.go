//go:build e2e

package e2e

import (
	"bufio"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

// apfAccounts are service accounts that may port-forward in demo: more normal users than the
// cluster's certificates give, in another priority level (workload-low) than people's (global-default).
const apfAccounts = `
apiVersion: v1
kind: ServiceAccount
metadata: {name: apf-1, namespace: demo}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: apf-2, namespace: demo}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: apf-legacy, namespace: demo}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: apf-portforward, namespace: demo}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get]}
- {apiGroups: [""], resources: [pods/portforward], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: apf-portforward, namespace: demo}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: apf-portforward}
subjects:
- {kind: ServiceAccount, name: apf-1, namespace: demo}
- {kind: ServiceAccount, name: apf-2, namespace: demo}
- {kind: ServiceAccount, name: apf-legacy, namespace: demo}
`

// apiserverConfig is kube-apiserver's URL with user's client certificate, or with token when user is "".
func apiserverConfig(user, token string) *rest.Config {
	pki := filepath.Join(clusterDir(), "pki")
	cfg := &rest.Config{Host: apiServer, QPS: -1, TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(pki, "ca.crt")}}
	if user != "" {
		cfg.CertFile, cfg.KeyFile = filepath.Join(pki, "user-"+user+".crt"), filepath.Join(pki, "user-"+user+".key")
	} else {
		cfg.BearerToken = token
	}
	return cfg
}

// holdPortForward opens a port-forward session to pod through prefix (a route) and holds it, with
// no stream: the cheapest session there is.
func holdPortForward(cfg *rest.Config, prefix, pod string) (httpstream.Connection, error) {
	rt, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(apiServer + prefix + "/api/v1/namespaces/demo/pods/" + pod + "/portforward")
	conn, _, err := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u).Dial(portforward.PortForwardProtocolV1Name)
	return conn, err
}

// holdSessions opens n sessions for cfg through prefix, over both demo pods (two nodes), at the pace
// exec-proxy's start rate allows; it fails on any other refusal.
func holdSessions(t *testing.T, cfg *rest.Config, prefix string, n int) []httpstream.Connection {
	var conns []httpstream.Connection
	for deadline := time.Now().Add(90 * time.Second); len(conns) < n; {
		conn, err := holdPortForward(cfg, prefix, []string{"demo", "echo"}[len(conns)%2])
		switch {
		case err != nil && strings.Contains(err.Error(), "--session-start-qps") && time.Now().Before(deadline):
			time.Sleep(250 * time.Millisecond)
		case err != nil:
			t.Errorf("session %d through %s: %v", len(conns)+1, prefix, err)
			return conns
		default:
			conns = append(conns, conn)
		}
	}
	return conns
}

// flowControl is kube-apiserver's priority-and-fairness gauges, summed by priority level.
type flowControl struct{ executingSeats, inQueue map[string]float64 }

func readFlowControl(t *testing.T) flowControl {
	t.Helper()
	f := flowControl{map[string]float64{}, map[string]float64{}}
	sc := bufio.NewScanner(strings.NewReader(admin(t, "", "get", "--raw", "/metrics")))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var into map[string]float64
		switch {
		case strings.HasPrefix(line, "apiserver_flowcontrol_current_executing_seats{"):
			into = f.executingSeats
		case strings.HasPrefix(line, "apiserver_flowcontrol_current_inqueue_requests{"):
			into = f.inQueue
		default:
			continue
		}
		_, labels, _ := strings.Cut(line, `priority_level="`)
		level, _, _ := strings.Cut(labels, `"`)
		v, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		into[level] += v
	}
	return f
}

// TestRouteHoldsNoSeats: 200 idle sessions of four normal users through the route hold none of
// kube-apiserver's priority-and-fairness seats (as on its own pods/exec path), a fifth user's kubectl
// get is neither queued nor refused meanwhile, and a user over exec-proxy's per-user cap gets
// exec-proxy's 429. Sessions through the legacy path, which do hold seats, hold them only in the
// level deploy/flowschema.yaml gives them: the control that shows the gauges see held seats at all.
func TestRouteHoldsNoSeats(t *testing.T) {
	admin(t, apfAccounts, "apply", "-f", "-")
	t.Cleanup(func() { admin(t, apfAccounts, "delete", "--ignore-not-found", "-f", "-") })
	token := func(sa string) string {
		return strings.TrimSpace(admin(t, "", "-n", "demo", "create", "token", sa, "--duration=1h"))
	}
	const perUser = 50 // exec-proxy's --max-sessions-per-user
	users := map[string]*rest.Config{
		"admin": apiserverConfig("admin", ""), "ns-user": apiserverConfig("ns-user", ""),
		"apf-1": apiserverConfig("", token("apf-1")), "apf-2": apiserverConfig("", token("apf-2")),
	}
	var (
		mu  sync.Mutex
		all []httpstream.Connection
		wg  sync.WaitGroup
	)
	t.Cleanup(func() {
		for _, c := range all {
			_ = c.Close()
		}
	})
	for name, cfg := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns := holdSessions(t, cfg, api.RoutePrefix, perUser)
			mu.Lock()
			defer mu.Unlock()
			all = append(all, conns...)
			t.Logf("%s holds %d sessions through the route", name, len(conns))
		}()
	}
	legacy := holdSessions(t, apiserverConfig("", token("apf-legacy")), api.LegacyRoutePrefix, 8)
	wg.Wait()
	all = append(all, legacy...)
	if len(all) != 4*perUser+8 {
		t.Fatalf("%d sessions open, want %d", len(all), 4*perUser+8)
	}

	t.Run("over the per-user cap: exec-proxy's 429", func(t *testing.T) {
		conn, err := holdPortForward(users["admin"], api.RoutePrefix, "demo")
		if err == nil {
			_ = conn.Close()
			t.Fatal("a 51st session was admitted")
		}
		if !strings.Contains(err.Error(), "--max-sessions-per-user") {
			t.Errorf("refused with %v, want exec-proxy's per-user cap", err)
		}
	})

	// Meanwhile another user's reads go through, on either path, in people's level.
	var gets []result
	for i := 0; i < 10; i++ {
		for _, rt := range []route{viaExecProxy, viaAPIServer} {
			gets = append(gets, clients[1].kubectl(t, rt, "viewer", "", "-n", "demo", "get", "pods", "-o", "name"))
		}
	}
	for i, res := range gets {
		if res.code != 0 || !strings.Contains(res.stdout, "pod/demo") {
			t.Errorf("viewer's get %d: exit %d %s", i, res.code, res.stderr)
		}
	}
	var samples []flowControl
	for i := 0; i < 5; i++ {
		samples = append(samples, readFlowControl(t))
		time.Sleep(300 * time.Millisecond)
	}
	for i, s := range samples {
		t.Logf("sample %d: executing seats %v, in queue %v", i, s.executingSeats, s.inQueue)
		// A request of exec-proxy's own (a SubjectAccessReview) may be running as a sample is taken;
		// 200 held sessions would be 200.
		if held := s.executingSeats["global-default"] + s.executingSeats["workload-low"]; held > 4 {
			t.Errorf("sample %d: %v seats executing in global-default and workload-low with the route's sessions open", i, held)
		}
		for _, level := range []string{"global-default", "workload-low"} {
			if q := s.inQueue[level]; q != 0 {
				t.Errorf("sample %d: %v requests queued in %s", i, q, level)
			}
		}
		if seats := s.executingSeats["execproxy-legacy-route"]; seats < 8 {
			t.Errorf("sample %d: the legacy path's 8 sessions hold %v seats of execproxy-legacy-route, want 8: the gauges do not see held sessions", i, seats)
		}
	}
}
