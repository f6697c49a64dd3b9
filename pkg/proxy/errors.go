package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// kubeletResponder turns failures to reach a kubelet into Statuses that name the node and say
// what to check. The upgrade-aware proxy flattens dial errors to text, so they are classified by it.
type kubeletResponder struct{ node, address string }

func (r kubeletResponder) Error(w http.ResponseWriter, req *http.Request, err error) {
	reason, status := classifyKubeletError(r.node, r.address, err)
	kubeletErrors.WithLabelValues(reason).Inc()
	session.WriteStatus(w, req, status)
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

// kubeletRefusal is the Status for a kubelet's answer other than 101 to an upgrade. Its message
// is kept; its code is the client's only where it speaks of the client's request (400, 404). A 401
// or 403 refuses exec-proxy's credentials, not the user's, and other codes are the kubelet's
// failure: 502 for both. Redirects are never followed, so they are failures too.
func kubeletRefusal(node, address string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	msg := fmt.Sprintf("kubelet on node %q (%s) answered %s instead of upgrading", node, address, resp.Status)
	if text := strings.TrimSpace(string(body)); text != "" {
		msg += ": " + text
	}
	kubeletErrors.WithLabelValues("refused").Inc()
	switch resp.StatusCode {
	case http.StatusBadRequest:
		return apierrors.NewBadRequest(msg)
	case http.StatusNotFound:
		return &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound, Message: msg}}
	case http.StatusUnauthorized, http.StatusForbidden:
		return gatewayError(msg + "; check exec-proxy's kubelet credentials (--kubelet-client-certificate, --kubelet-token-file) and their nodes/proxy permission")
	}
	return gatewayError(msg)
}

// rawKubeletRefusal is kubeletRefusal of the answer as the kubelet sent it (raw).
func rawKubeletRefusal(node, address string, raw []byte) error {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		kubeletErrors.WithLabelValues("upgrade").Inc()
		return gatewayError(fmt.Sprintf("kubelet on node %q (%s) sent an unreadable answer to the upgrade: %v", node, address, err))
	}
	return kubeletRefusal(node, address, resp)
}

// writeStatusResponse writes err's Status as a response that closes the connection; returns its code.
func writeStatusResponse(w io.Writer, err error) int {
	st := apierrors.NewInternalError(err).Status()
	if se, ok := err.(apierrors.APIStatus); ok {
		st = se.Status()
	}
	st.Kind, st.APIVersion = "Status", "v1"
	body, _ := json.Marshal(st)
	_, _ = fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		st.Code, http.StatusText(int(st.Code)), len(body), body)
	return int(st.Code)
}

func gatewayError(msg string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusBadGateway, Reason: metav1.StatusReasonServiceUnavailable, Message: msg,
	}}
}
