package pod

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/exec-proxy/exec-proxy/pkg/proxy"
)

// validateStreams refuses what the kubelet would refuse only after a TLS handshake and an upgrade.
func validateStreams(kind proxy.Kind, stdin, stdout, stderr, noCommand bool) error {
	if kind == proxy.KindExec && noCommand {
		return apierrors.NewBadRequest("exec needs a command: give at least one command= parameter (kubectl exec POD -- COMMAND)")
	}
	if !stdin && !stdout && !stderr {
		return apierrors.NewBadRequest("at least one of stdin, stdout and stderr must be true")
	}
	return nil
}
