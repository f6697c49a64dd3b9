package session

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Request is one client's ask, already authorized; exactly one of Exec, Attach and PortForward is
// set, as Kind says.
type Request struct {
	Kind        Kind
	Namespace   string
	Pod         string
	Exec        *corev1.PodExecOptions
	Attach      *corev1.PodAttachOptions
	PortForward *corev1.PodPortForwardOptions
	// Justification is the reason the user gave (JustificationParam), if any.
	Justification string
}

// ConnectOptions is an empty options object of kind, for the query parameters to be decoded into.
func ConnectOptions(kind Kind) runtime.Object {
	switch kind {
	case KindExec:
		return &corev1.PodExecOptions{}
	case KindAttach:
		return &corev1.PodAttachOptions{}
	}
	return &corev1.PodPortForwardOptions{}
}

// NewRequest checks the options for kind and builds the request.
func NewRequest(kind Kind, namespace, name string, opts runtime.Object) (Request, error) {
	req := Request{Kind: kind, Namespace: namespace, Pod: name}
	if err := validateNames(namespace, name); err != nil {
		return req, err
	}
	switch o := opts.(type) {
	case *corev1.PodExecOptions:
		req.Exec = o
		if err := validateCommand(o.Command); err != nil {
			return req, err
		}
		return req, validateStreams(kind, o.Stdin, o.Stdout, o.Stderr, len(o.Command) == 0)
	case *corev1.PodAttachOptions:
		req.Attach = o
		return req, validateStreams(kind, o.Stdin, o.Stdout, o.Stderr, false)
	case *corev1.PodPortForwardOptions:
		req.PortForward = o
		return req, nil
	}
	return req, fmt.Errorf("invalid options object: %T", opts)
}

// Container is the container the request names, and whether it needs one (port-forward does not).
func (r Request) Container() (string, bool) {
	switch {
	case r.Exec != nil:
		return r.Exec.Container, true
	case r.Attach != nil:
		return r.Attach.Container, true
	}
	return "", false
}
