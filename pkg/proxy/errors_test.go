package proxy

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestClassifyKubeletError(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		reason  string
		code    int32
		message string
	}{
		{"kubelet's own Status passes through", apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, "n1", errors.New("no")),
			"refused", http.StatusForbidden, "forbidden"},
		{"unknown authority", errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority"),
			"certificate", http.StatusBadGateway, `kubelet on node "n1" (10.0.0.1:10250) failed TLS certificate verification`},
		{"handshake", errors.New("remote error: tls: handshake failure"),
			"tls", http.StatusBadGateway, `TLS handshake with the kubelet on node "n1" (10.0.0.1:10250) failed`},
		{"no upgrade", errors.New("invalid upgrade response: status code 200"),
			"upgrade", http.StatusBadGateway, `kubelet on node "n1" (10.0.0.1:10250) did not upgrade the connection`},
		{"refused", errors.New("dial tcp 10.0.0.1:10250: connect: connection refused"),
			"unreachable", http.StatusServiceUnavailable, `kubelet on node "n1" (10.0.0.1:10250) is unreachable`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reason, err := classifyKubeletError("n1", "10.0.0.1:10250", tc.err)
			var status apierrors.APIStatus
			if !errors.As(err, &status) {
				t.Fatalf("%v is not a Status", err)
			}
			if reason != tc.reason || status.Status().Code != tc.code || !strings.Contains(status.Status().Message, tc.message) {
				t.Errorf("got %s %d %q, want %s %d %q", reason, status.Status().Code, status.Status().Message, tc.reason, tc.code, tc.message)
			}
		})
	}
}
