package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

// WriteStatus writes err to the client as a Kubernetes Status.
func WriteStatus(w http.ResponseWriter, req *http.Request, err error) {
	responsewriters.ErrorNegotiated(err, api.Codecs, metav1.SchemeGroupVersion, w, req)
}

// kubeletResponder turns failures to reach a kubelet into Statuses that name the node and say
// what to check. The upgrade-aware proxy flattens dial errors to text, so they are classified by it.
type kubeletResponder struct{ node, address string }

func (r kubeletResponder) Error(w http.ResponseWriter, req *http.Request, err error) {
	reason, status := classifyKubeletError(r.node, r.address, err)
	kubeletErrors.WithLabelValues(reason).Inc()
	WriteStatus(w, req, status)
}

func classifyKubeletError(node, address string, err error) (string, error) {
	var statusErr apierrors.APIStatus
	if errors.As(err, &statusErr) {
		return "refused", err
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls: failed to verify") ||
		strings.Contains(msg, "certificate"):
		return "certificate", gatewayError(fmt.Sprintf(
			"kubelet on node %q (%s) failed TLS certificate verification: %v; check --kubelet-certificate-authority and the kubelet's serving certificate", node, address, err))
	case strings.Contains(msg, "tls:") || strings.Contains(msg, "remote error"):
		return "tls", gatewayError(fmt.Sprintf("TLS handshake with the kubelet on node %q (%s) failed: %v", node, address, err))
	case strings.Contains(msg, "invalid upgrade response"):
		return "upgrade", gatewayError(fmt.Sprintf("kubelet on node %q (%s) did not upgrade the connection: %v", node, address, err))
	default:
		return "unreachable", apierrors.NewServiceUnavailable(fmt.Sprintf("kubelet on node %q (%s) is unreachable: %v", node, address, err))
	}
}

func gatewayError(msg string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusBadGateway, Reason: metav1.StatusReasonServiceUnavailable, Message: msg,
	}}
}
