package apiserver

import (
	"context"
	"errors"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/exec-proxy/exec-proxy/pkg/policy"
	"github.com/exec-proxy/exec-proxy/pkg/proxy"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionadmission"
)

// ephemeralCheck is what an ephemeral container added through the route (kubectl debug) must pass:
// the cluster's admission for the update as the user would have sent it, and the session policy,
// for the container's command as an exec's into the pod (it runs a command there as one does); a
// locked user adds none.
type ephemeralCheck struct {
	policy    *policy.Source
	admission *sessionadmission.Control
	// locks refuses a locked user's debug containers as their sessions; nil: no locks.
	locks proxy.Locks
}

func (e ephemeralCheck) CheckEphemeral(ctx context.Context, pod, patched *corev1.Pod, added []corev1.EphemeralContainer) error {
	u, _ := genericapirequest.UserFrom(ctx)
	if e.locks != nil && u != nil {
		if err := e.locks.Check(u.GetName(), u.GetGroups()); err != nil {
			return err
		}
	}
	if _, err := e.admission.ValidateUpdate(ctx, pod, patched, u); err != nil {
		return err
	}
	for _, c := range added {
		s := policy.Session{Kind: session.KindExec, Namespace: pod.Namespace, Pod: pod.Name, PodLabels: pod.Labels,
			Command: append(slices.Clone(c.Command), c.Args...), TTY: c.TTY, Stdin: c.Stdin}
		if u != nil {
			s.User, s.Groups = u.GetName(), u.GetGroups()
		}
		if _, err := e.policy.Current().Decide(s); err != nil {
			var st apierrors.APIStatus
			msg := err.Error()
			if errors.As(err, &st) {
				msg = st.Status().Message
			}
			// The policy's own words, without its `pods/exec "web" is forbidden: `.
			if _, why, ok := strings.Cut(msg, " is forbidden: "); ok {
				msg = why
			}
			return apierrors.NewForbidden(schema.GroupResource{Resource: "pods/ephemeralcontainers"}, pod.Name,
				errors.New("the debug container "+c.Name+" runs its command as an exec would, and "+msg))
		}
	}
	return nil
}
