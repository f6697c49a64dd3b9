package session

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

// WriteStatus writes err to the client as a Kubernetes Status.
func WriteStatus(w http.ResponseWriter, req *http.Request, err error) {
	if httpstream.IsUpgradeRequest(req) {
		// The connection was for an upgrade that will not happen: nothing else may follow on it.
		w.Header().Set("Connection", "close")
	}
	responsewriters.ErrorNegotiated(err, api.Codecs, metav1.SchemeGroupVersion, w, req)
}

// WriteStatusResponse writes err's Status as a raw HTTP response that closes the connection, where
// no ResponseWriter is left (a hijacked connection, the translator's); it returns the code.
func WriteStatusResponse(w io.Writer, err error) int {
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

// GatewayError is a 502: the kubelet, behind exec-proxy, failed the session.
func GatewayError(msg string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusBadGateway, Reason: metav1.StatusReasonServiceUnavailable, Message: msg,
	}}
}
