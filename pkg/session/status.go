package session

import (
	"net/http"

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
