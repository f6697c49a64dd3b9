package api

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ExecLock locks a user, or every member of a group, out of exec-proxy's sessions: their live
// sessions end and new ones are refused until it expires or is deleted. Cluster-scoped; its name is
// LockName of its subject, so that a second lock of the same subject is the same object.
type ExecLock struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ExecLockSpec   `json:"spec"`
	Status ExecLockStatus `json:"status,omitzero"`
}

// ExecLockSpec is what the locker asked for. Exactly one of User and Group is set.
type ExecLockSpec struct {
	User   string `json:"user,omitempty"`
	Group  string `json:"group,omitempty"`
	Reason string `json:"reason,omitempty"`
	// ExpirationSeconds is how long the lock holds from its creation, as a TokenRequest's; nil:
	// until it is deleted.
	ExpirationSeconds *int64 `json:"expirationSeconds,omitempty"`
}

// ExecLockStatus is set by exec-proxy from the request that created the lock, never from its body.
type ExecLockStatus struct {
	// LockedBy is the user who created (or last renewed) the lock.
	LockedBy string      `json:"lockedBy,omitempty"`
	LockedAt metav1.Time `json:"lockedAt,omitzero"`
	// ExpirationTimestamp is when the lock stops applying; nil: never.
	ExpirationTimestamp *metav1.Time `json:"expirationTimestamp,omitempty"`
}

// ExecLockList is a list of locks.
type ExecLockList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ExecLock `json:"items"`
}

// LockName is the name of the lock of a user (user-NAME) or of a group (group-NAME), so that
// `kubectl execproxy unlock alice` finds the lock `lock alice` made. A subject that cannot be a
// path segment (an OIDC user https://issuer#sub, a group /team/x) is named by a hash of it
// (user~HASH): readable names never hold '~', so the two never meet.
func LockName(user, group string) string {
	kind, subject := "user-", user
	if group != "" {
		kind, subject = "group-", group
	}
	if strings.ContainsAny(subject, "/%~") || subject == "." || subject == ".." {
		sum := sha256.Sum256([]byte(subject))
		return strings.TrimSuffix(kind, "-") + "~" + hex.EncodeToString(sum[:12])
	}
	return kind + subject
}

// DeepCopyInto copies l into out.
func (l *ExecLock) DeepCopyInto(out *ExecLock) {
	*out = *l
	l.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if l.Spec.ExpirationSeconds != nil {
		s := *l.Spec.ExpirationSeconds
		out.Spec.ExpirationSeconds = &s
	}
	l.Status.LockedAt.DeepCopyInto(&out.Status.LockedAt)
	out.Status.ExpirationTimestamp = l.Status.ExpirationTimestamp.DeepCopy()
}

// DeepCopyObject implements runtime.Object.
func (l *ExecLock) DeepCopyObject() runtime.Object {
	out := &ExecLock{}
	l.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (l *ExecLockList) DeepCopyObject() runtime.Object {
	out := &ExecLockList{TypeMeta: l.TypeMeta}
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = make([]ExecLock, len(l.Items))
	for i := range l.Items {
		l.Items[i].DeepCopyInto(&out.Items[i])
	}
	return out
}
