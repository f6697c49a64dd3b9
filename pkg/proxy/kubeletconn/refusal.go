package kubeletconn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// Responder turns failures to reach a kubelet into Statuses that name the node and say what to
// check: the upgrade-aware proxy's ErrorResponder. It flattens dial errors to text, so they are
// classified by it.
type Responder struct{ Node, Address string }

func (r Responder) Error(w http.ResponseWriter, req *http.Request, err error) {
	reason, status := classify(r.Node, r.Address, err)
	refusals.WithLabelValues(reason).Inc()
	session.WriteStatus(w, req, status)
}

func classify(node, address string, err error) (string, error) {
	var statusErr apierrors.APIStatus
	if errors.As(err, &statusErr) {
		return "refused", err
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls: failed to verify") ||
		strings.Contains(msg, "certificate"):
		return "certificate", session.GatewayError(fmt.Sprintf(
			"kubelet on node %q (%s) failed TLS certificate verification: %v; check --kubelet-certificate-authority and the kubelet's serving certificate", node, address, err))
	case strings.Contains(msg, "tls:") || strings.Contains(msg, "remote error"):
		return "tls", session.GatewayError(fmt.Sprintf("TLS handshake with the kubelet on node %q (%s) failed: %v", node, address, err))
	case strings.Contains(msg, "invalid upgrade response"):
		return "upgrade", session.GatewayError(fmt.Sprintf("kubelet on node %q (%s) did not upgrade the connection: %v", node, address, err))
	default:
		return "unreachable", apierrors.NewServiceUnavailable(fmt.Sprintf("kubelet on node %q (%s) is unreachable: %v", node, address, err))
	}
}

// Refusal is the Status for a kubelet's answer other than 101 to an upgrade. Its message
// is kept; its code is the client's only where it speaks of the client's request (400, 404). A 401
// or 403 refuses exec-proxy's credentials, not the user's, and other codes are the kubelet's
// failure: 502 for both. Redirects are never followed, so they are failures too.
func Refusal(node, address string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	msg := fmt.Sprintf("kubelet on node %q (%s) answered %s instead of upgrading", node, address, resp.Status)
	if text := strings.TrimSpace(string(body)); text != "" {
		msg += ": " + text
	}
	refusals.WithLabelValues("refused").Inc()
	switch resp.StatusCode {
	case http.StatusBadRequest:
		return apierrors.NewBadRequest(msg)
	case http.StatusNotFound:
		return &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound, Message: msg}}
	case http.StatusUnauthorized, http.StatusForbidden:
		return session.GatewayError(msg + "; check exec-proxy's kubelet credentials (--kubelet-client-certificate, --kubelet-token-file) and their nodes/proxy permission")
	}
	return session.GatewayError(msg)
}

// RawRefusal is Refusal of the answer as the kubelet sent it (raw).
func RawRefusal(node, address string, raw []byte) error {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		refusals.WithLabelValues("upgrade").Inc()
		return session.GatewayError(fmt.Sprintf("kubelet on node %q (%s) sent an unreadable answer to the upgrade: %v", node, address, err))
	}
	return Refusal(node, address, resp)
}
