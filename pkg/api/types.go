package api

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ExecSession is one live exec, attach or port-forward session held by an exec-proxy replica.
// Its name is the session id (the audit ID of its records), its namespace the pod's.
type ExecSession struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ExecSessionSpec   `json:"spec"`
	Status ExecSessionStatus `json:"status"`
}

// ExecSessionSpec is what the user asked for.
type ExecSessionSpec struct {
	// Type is exec, attach or portforward.
	Type      string   `json:"type"`
	User      string   `json:"user"`
	Groups    []string `json:"groups,omitempty"`
	Pod       string   `json:"pod"`
	Container string   `json:"container,omitempty"`
	Command   []string `json:"command,omitempty"`
	TTY       bool     `json:"tty,omitempty"`
	Stdin     bool     `json:"stdin,omitempty"`
	Ports     []int32  `json:"ports,omitempty"`
	// Justification is the reason the user gave (kubectl execproxy exec --reason).
	Justification string `json:"justification,omitempty"`
}

// ExecSessionStatus is how the session is going.
type ExecSessionStatus struct {
	Node           string      `json:"node"`
	KubeletAddress string      `json:"kubeletAddress"`
	Protocol       string      `json:"protocol,omitempty"`
	StartTime      metav1.Time `json:"startTime"`
	// BytesIn and BytesOut crossed the client's connection so far, framing included.
	BytesIn  int64 `json:"bytesIn"`
	BytesOut int64 `json:"bytesOut"`
	// Replica is the exec-proxy instance that holds the session.
	Replica string `json:"replica,omitempty"`
	// PolicyRule is the session policy rule the session runs under, if one matched.
	PolicyRule string `json:"policyRule,omitempty"`
	// Phase is WaitingForModerator while a session whose rule requires a moderator waits for one,
	// before exec-proxy connects to its kubelet, and Running once it goes on.
	Phase string `json:"phase,omitempty"`
	// Moderators are who moderate the session now, when its rule requires a moderator.
	Moderators []string `json:"moderators,omitempty"`
}

// The phases of a session.
const (
	PhaseWaitingForModerator = "WaitingForModerator"
	PhaseRunning             = "Running"
)

// ExecSessionList is a list of live sessions.
type ExecSessionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ExecSession `json:"items"`
}

// DeepCopyInto copies s into out.
func (s *ExecSession) DeepCopyInto(out *ExecSession) {
	*out = *s
	s.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Spec.Groups = append([]string(nil), s.Spec.Groups...)
	out.Spec.Command = append([]string(nil), s.Spec.Command...)
	out.Spec.Ports = append([]int32(nil), s.Spec.Ports...)
	out.Status.Moderators = append([]string(nil), s.Status.Moderators...)
	s.Status.StartTime.DeepCopyInto(&out.Status.StartTime)
}

// DeepCopyObject implements runtime.Object.
func (s *ExecSession) DeepCopyObject() runtime.Object {
	out := &ExecSession{}
	s.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (l *ExecSessionList) DeepCopyObject() runtime.Object {
	out := &ExecSessionList{TypeMeta: l.TypeMeta}
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = make([]ExecSession, len(l.Items))
	for i := range l.Items {
		l.Items[i].DeepCopyInto(&out.Items[i])
	}
	return out
}
