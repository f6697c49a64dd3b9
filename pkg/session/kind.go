// Package session is what every stage says about a session: its kind, the request that opens it
// and its validation, the reasons it ends, and how a refusal is written as a Kubernetes Status.
// The route, the registry, the audit and the engine import it; it imports none of them.
package session

// Kind is what a session does in the pod; it is spelled as the pod subresource that opens it.
type Kind string

const (
	KindExec        Kind = "exec"
	KindAttach      Kind = "attach"
	KindPortForward Kind = "portforward"
)

// Kinds are the kinds of session, one for each pod subresource that opens one.
var Kinds = []Kind{KindExec, KindAttach, KindPortForward}

// KindFor is the kind of session the pod subresource opens, if it opens one.
func KindFor(subresource string) (Kind, bool) {
	for _, k := range Kinds {
		if string(k) == subresource {
			return k, true
		}
	}
	return "", false
}

// Subresources are the pod subresources that open a session.
func Subresources() []string {
	out := make([]string, len(Kinds))
	for i, k := range Kinds {
		out[i] = string(k)
	}
	return out
}
