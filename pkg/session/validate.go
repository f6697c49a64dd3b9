package session

import (
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validation"
)

// validateStreams refuses what the kubelet would refuse only after a TLS handshake and an upgrade.
func validateStreams(kind Kind, stdin, stdout, stderr, noCommand bool) error {
	if kind == KindExec && noCommand {
		return apierrors.NewBadRequest("exec needs a command: give at least one command= parameter (kubectl exec POD -- COMMAND)")
	}
	if !stdin && !stdout && !stderr {
		return apierrors.NewBadRequest("at least one of stdin, stdout and stderr must be true")
	}
	return nil
}

// validateNames refuses a namespace or pod name no object can have (such as "..", or one with a
// space or a ';' that a path's spelling smuggled in): it is a 400 naming it, not a lookup.
func validateNames(namespace, pod string) error {
	if errs := validation.ValidateNamespaceName(namespace, false); len(errs) > 0 {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid namespace %q: %s", namespace, strings.Join(errs, "; ")))
	}
	if errs := validation.NameIsDNSSubdomain(pod, false); len(errs) > 0 {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid pod name %q: %s", pod, strings.Join(errs, "; ")))
	}
	return nil
}
