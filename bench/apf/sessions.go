package apf

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// The service accounts the part creates: more normal users than the cluster's certificates
// give, in another priority level (workload-low) than people's (global-default).
var accounts = []string{"apf-bench-1", "apf-bench-2"}

const (
	roleName = "apf-bench-portforward"
	// MaxSessions: four users (admin, ns-user, accounts) at exec-proxy's default
	// --max-sessions-per-user of 50.
	MaxSessions = 4 * 50
)

// createUsers are the users who hold the sessions, as configs for kube-apiserver's own URL: admin and
// ns-user by client certificate, the bench's service accounts by tokens from the TokenRequest API.
// It creates the accounts with a Role to get pods and port-forward in demo.
func createUsers(ctx context.Context, client kubernetes.Interface, config func(name string) (*rest.Config, error)) (map[string]*rest.Config, error) {
	users := map[string]*rest.Config{}
	for _, u := range []string{"admin", "ns-user"} {
		cfg, err := config(u + "-direct")
		if err != nil {
			return nil, err
		}
		users[u] = cfg
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: roleName, Namespace: namespace}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"pods/portforward"}, Verbs: []string{"create"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: roleName, Namespace: namespace},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: roleName}}
	for _, sa := range accounts {
		binding.Subjects = append(binding.Subjects, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: namespace})
		account := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: namespace}}
		if _, err := client.CoreV1().ServiceAccounts(namespace).Create(ctx, account, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating service account %s: %w", sa, err)
		}
	}
	if _, err := client.RbacV1().Roles(namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating role %s: %w", roleName, err)
	}
	if _, err := client.RbacV1().RoleBindings(namespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating role binding %s: %w", roleName, err)
	}
	expiry := int64(4 * 3600)
	for _, sa := range accounts {
		tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, sa,
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("token of %s: %w", sa, err)
		}
		cfg := rest.AnonymousClientConfig(users["admin"]) // kube-apiserver's URL and CA, no certificate
		cfg.BearerToken = tr.Status.Token
		users["system:serviceaccount:"+namespace+":"+sa] = cfg
	}
	return users, nil
}

// removeUsers deletes what createUsers created.
func removeUsers(ctx context.Context, client kubernetes.Interface, logf func(format string, args ...any)) {
	rbac := client.RbacV1()
	for _, err := range []error{rbac.RoleBindings(namespace).Delete(ctx, roleName, metav1.DeleteOptions{}),
		rbac.Roles(namespace).Delete(ctx, roleName, metav1.DeleteOptions{})} {
		if err != nil && !apierrors.IsNotFound(err) {
			logf("apf: cleaning up: %v", err)
		}
	}
	for _, sa := range accounts {
		if err := client.CoreV1().ServiceAccounts(namespace).Delete(ctx, sa, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			logf("apf: cleaning up: %v", err)
		}
	}
}

// holdRouteSessions opens n idle port-forward sessions through the route, spread over users (each
// under exec-proxy's per-user cap) and over both demo pods, users in parallel. On an error it
// closes what it opened.
func holdRouteSessions(ctx context.Context, users map[string]*rest.Config, n int) ([]httpstream.Connection, error) {
	var (
		mu    sync.Mutex
		all   []httpstream.Connection
		first error
		wg    sync.WaitGroup
		i     int
	)
	for _, cfg := range users {
		k := n / len(users)
		if i < n%len(users) {
			k++
		}
		i++
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns, err := holdSessions(ctx, cfg, k)
			mu.Lock()
			defer mu.Unlock()
			all = append(all, conns...)
			if err != nil && first == nil {
				first = err
			}
		}()
	}
	wg.Wait()
	if first != nil {
		closeAll(all)
		return nil, first
	}
	return all, nil
}

// holdSessions opens n sessions for cfg through the route at the pace exec-proxy's start rate
// allows (its 429 names --session-start-qps); any other refusal ends it.
func holdSessions(ctx context.Context, cfg *rest.Config, n int) ([]httpstream.Connection, error) {
	var conns []httpstream.Connection
	for deadline := time.Now().Add(2 * time.Minute); len(conns) < n; {
		conn, err := holdPortForward(cfg, []string{"demo", "echo"}[len(conns)%2])
		switch {
		case err != nil && strings.Contains(err.Error(), "--session-start-qps") && time.Now().Before(deadline) && ctx.Err() == nil:
			time.Sleep(250 * time.Millisecond)
		case err != nil:
			return conns, fmt.Errorf("session %d of %d through the route: %w", len(conns)+1, n, err)
		default:
			conns = append(conns, conn)
		}
	}
	return conns, nil
}

// holdPortForward opens a port-forward to target through the route with no stream: the cheapest
// session there is, which starts nothing in the container.
func holdPortForward(cfg *rest.Config, target string) (httpstream.Connection, error) {
	rt, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimSuffix(cfg.Host, "/") + kubeRoute + "/api/v1/namespaces/" + namespace + "/pods/" + target + "/portforward")
	if err != nil {
		return nil, err
	}
	conn, _, err := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u).Dial(portforward.PortForwardProtocolV1Name)
	return conn, err
}

func closeAll(conns []httpstream.Connection) {
	for _, c := range conns {
		_ = c.Close()
	}
}

// activeSessions is exec-proxy's execproxy_sessions_active.
func (a *bench) activeSessions() (float64, error) {
	body, err := a.o.ExecProxyMetrics()
	if err != nil {
		return 0, err
	}
	v, ok := sumByLabel(string(body), "execproxy_sessions_active", "")[""]
	if !ok {
		return 0, fmt.Errorf("no execproxy_sessions_active in exec-proxy's /metrics")
	}
	return v, nil
}

// waitNoSessions waits, a minute at most, until exec-proxy holds no session.
func (a *bench) waitNoSessions(ctx context.Context) error {
	var n float64
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(250 * time.Millisecond) {
		if n, err = a.activeSessions(); err == nil && n == 0 {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("exec-proxy's sessions: %w", err)
	}
	return fmt.Errorf("exec-proxy still holds %v sessions a minute after the bench closed its own", n)
}
