package locks

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// Expired reports whether l no longer applies at now.
func Expired(l *api.ExecLock, now time.Time) bool {
	return l.Status.ExpirationTimestamp != nil && !now.Before(l.Status.ExpirationTimestamp.Time)
}

// Applies reports whether l locks out user, a member of groups, at now.
func Applies(l *api.ExecLock, user string, groups []string, now time.Time) bool {
	if Expired(l, now) {
		return false
	}
	if l.Spec.Group != "" {
		return slices.Contains(groups, l.Spec.Group)
	}
	return l.Spec.User == user
}

// Refusal is the 403 Status that refuses user's session under l: its message names the lock, its
// reason, who locked and until when; its details name the execlock.
func Refusal(l *api.ExecLock, user string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
		Details: &metav1.StatusDetails{Group: api.GroupName, Kind: "execlocks", Name: l.Name},
		Message: fmt.Sprintf("user %q is locked out of sessions by %s", user, describe(l)),
	}}
}

// EndReason is the end reason of a live session that l ended, as `killed by <user>` is for a
// deleted execsession.
func EndReason(l *api.ExecLock) string {
	reason := session.ReasonLockedBy + lockRef(l)
	if l.Spec.Reason != "" {
		reason += " (" + l.Spec.Reason + ")"
	}
	return reason
}

func lockRef(l *api.ExecLock) string { return fmt.Sprintf("exec-proxy lock %q", l.Name) }

// describe is l in a sentence: `exec-proxy lock "group-x" (of group "x"): <reason>; locked by
// bob at T, until T2`.
func describe(l *api.ExecLock) string {
	var b strings.Builder
	b.WriteString(lockRef(l))
	if l.Spec.Group != "" {
		fmt.Fprintf(&b, " (of group %q)", l.Spec.Group)
	}
	if l.Spec.Reason != "" {
		b.WriteString(": " + l.Spec.Reason)
	}
	fmt.Fprintf(&b, "; locked by %s at %s", l.Status.LockedBy, l.Status.LockedAt.UTC().Format(time.RFC3339))
	if l.Status.ExpirationTimestamp != nil {
		b.WriteString(", until " + l.Status.ExpirationTimestamp.UTC().Format(time.RFC3339))
	} else {
		b.WriteString(", until unlocked")
	}
	return b.String()
}
