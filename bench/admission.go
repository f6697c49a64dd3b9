package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/exec-proxy/exec-proxy/bench/internal/execpath"
	"github.com/exec-proxy/exec-proxy/bench/internal/stats"
)

// AdmissionSetup is what one ValidatingAdmissionPolicy that matches every exec adds to a session's
// setup through exec-proxy (exec -- true): the policy bound and removed between alternating
// batches, the same number of sessions with and without it.
type AdmissionSetup struct {
	Protocol   string         `json:"protocol"`
	WithPolicy execpath.Setup `json:"withPolicy"`
	NoPolicy   execpath.Setup `json:"withoutPolicy"`
	// AddedP50 is, over the batches, batch median with the policy minus the one without, in ms.
	AddedP50 stats.Stats `json:"addedP50ms"`
	// ServerMs is admission's own time in exec-proxy, from its histogram: the mean per session of
	// the allowed sessions, with the policy and without, in ms.
	ServerMsWithPolicy float64 `json:"serverMsWithPolicy"`
	ServerMsNoPolicy   float64 `json:"serverMsWithoutPolicy"`
}

const benchPolicy = "execproxy-bench"

// admissionRuns measures AdmissionSetup over each protocol through route.
func admissionRuns(ctx context.Context, o options, route execpath.Path) ([]AdmissionSetup, error) {
	adminCfg, err := execpath.LoadConfig(o.cluster, "cluster-admin")
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(adminCfg)
	if err != nil {
		return nil, err
	}
	defer func() { _ = bindPolicy(context.Background(), client, route, false) }()
	batches := 10
	n := max(o.sessions/batches, 5)
	var out []AdmissionSetup
	for _, protocol := range []string{"spdy", "websocket"} {
		var with, without, added []float64
		var server [2]struct{ sum, count float64 } // with, without
		for b := 0; b < batches; b++ {
			var medians [2]float64
			for _, on := range stats.Turned([]bool{true, false}, b) {
				if err := bindPolicy(ctx, client, route, on); err != nil {
					return nil, err
				}
				logf("exec-proxy over %s, admission policy bound %v: exec -- true ×%d (batch %d of %d)", protocol, on, n, b+1, batches)
				before, err := admissionSeconds(o.cluster)
				if err != nil {
					return nil, err
				}
				ms, err := execpath.SetupTimes(ctx, route, protocol, n)
				if err != nil {
					return nil, err
				}
				after, err := admissionSeconds(o.cluster)
				if err != nil {
					return nil, err
				}
				i := 0
				if !on {
					i = 1
				}
				server[i].sum += after[0] - before[0]
				server[i].count += after[1] - before[1]
				if on {
					with, medians[0] = append(with, ms...), stats.Percentile(ms, 50)
				} else {
					without, medians[1] = append(without, ms...), stats.Percentile(ms, 50)
				}
			}
			added = append(added, medians[0]-medians[1])
		}
		sort.Float64s(with)
		sort.Float64s(without)
		out = append(out, AdmissionSetup{Protocol: protocol,
			WithPolicy:         execpath.Setup{Path: "exec-proxy + policy", Protocol: protocol, P50: stats.Percentile(with, 50), P99: stats.Percentile(with, 99), Count: len(with)},
			NoPolicy:           execpath.Setup{Path: "exec-proxy", Protocol: protocol, P50: stats.Percentile(without, 50), P99: stats.Percentile(without, 99), Count: len(without)},
			AddedP50:           stats.Summarize(added),
			ServerMsWithPolicy: 1000 * server[0].sum / max(server[0].count, 1), ServerMsNoPolicy: 1000 * server[1].sum / max(server[1].count, 1)})
	}
	return out, nil
}

// bindPolicy creates or deletes a policy, with its binding, that checks every exec's command, and
// waits until exec-proxy's informers have it (a command it denies is refused) or not.
func bindPolicy(ctx context.Context, client kubernetes.Interface, route execpath.Path, on bool) error {
	api := client.AdmissionregistrationV1()
	if on {
		policy := &admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: benchPolicy},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
				MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Connect},
						Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods/exec"}}}}}},
				Validations: []admissionregistrationv1.Validation{{Expression: "!object.command.exists(c, c == 'bench-denied')", Message: "bench-denied is denied"}}}}
		binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: benchPolicy},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: benchPolicy,
				ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}}}
		if _, err := api.ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating the bench's admission policy: %w", err)
		}
		if _, err := api.ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating the bench's admission policy binding: %w", err)
		}
	} else {
		if err := api.ValidatingAdmissionPolicyBindings().Delete(ctx, benchPolicy, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if err := api.ValidatingAdmissionPolicies().Delete(ctx, benchPolicy, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		err := route.Run(ctx, "spdy", []string{"bench-denied"}, nil, io.Discard)
		if denied := err != nil && strings.Contains(err.Error(), "bench-denied is denied"); denied == on {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("exec-proxy did not see the bench's admission policy bound=%v within a minute", on)
}

// admissionSeconds is exec-proxy's histogram of allowed sessions' admission: its sum and count.
func admissionSeconds(cluster string) ([2]float64, error) {
	body, err := straightGet(adminStraight(cluster), "/metrics", 10*time.Second)
	if err != nil {
		return [2]float64{}, err
	}
	var out [2]float64
	for _, line := range strings.Split(string(body), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case `execproxy_session_admission_duration_seconds_sum{result="allowed"}`:
			out[0] = v
		case `execproxy_session_admission_duration_seconds_count{result="allowed"}`:
			out[1] = v
		}
	}
	return out, nil
}
