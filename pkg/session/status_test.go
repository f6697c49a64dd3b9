package session

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestWriteStatus: a refusal is a Status with the error's code; an upgrade refused closes the
// connection, as nothing else may follow on it.
func TestWriteStatus(t *testing.T) {
	for _, upgrade := range []bool{false, true} {
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		if upgrade {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "SPDY/3.1")
		}
		w := httptest.NewRecorder()
		WriteStatus(w, req, apierrors.NewBadRequest("no"))
		var st metav1.Status
		if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || w.Code != http.StatusBadRequest || st.Kind != "Status" || st.Message != "no" {
			t.Errorf("upgrade %v: %d %s (%v)", upgrade, w.Code, w.Body, err)
		}
		if got := w.Header().Get("Connection") == "close"; got != upgrade {
			t.Errorf("upgrade %v: Connection %q", upgrade, w.Header().Get("Connection"))
		}
	}
}
