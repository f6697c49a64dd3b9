package kubeletconn

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestClassify(t *testing.T) {
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
			reason, err := classify("n1", "10.0.0.1:10250", tc.err)
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

func TestRefusal(t *testing.T) {
	cases := []struct {
		name    string
		raw     string
		code    int32
		message string
	}{
		{"error text is kept", "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 8\r\n\r\nno pod\n\n",
			http.StatusBadGateway, `kubelet on node "n1" (10.0.0.1:10250) answered 500 Internal Server Error instead of upgrading: no pod`},
		{"credentials refused are not the user's 403", "HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nForbidden",
			http.StatusBadGateway, "answered 403 Forbidden instead of upgrading: Forbidden; check exec-proxy's kubelet credentials"},
		{"not found is the client's", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
			http.StatusNotFound, "answered 404 Not Found instead of upgrading"},
		{"bad request is the client's", "HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad",
			http.StatusBadRequest, "answered 400 Bad Request instead of upgrading: bad"},
		{"a body cut short keeps what came", "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100\r\n\r\npartial",
			http.StatusBadGateway, "instead of upgrading: partial"},
		{"not HTTP", "garbage\r\n\r\n", http.StatusBadGateway, "sent an unreadable answer to the upgrade"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var status apierrors.APIStatus
			if err := RawRefusal("n1", "10.0.0.1:10250", []byte(tc.raw)); !errors.As(err, &status) {
				t.Fatalf("%v is not a Status", err)
			}
			if st := status.Status(); st.Code != tc.code || !strings.Contains(st.Message, tc.message) {
				t.Errorf("got %d %q, want %d with %q", st.Code, st.Message, tc.code, tc.message)
			}
		})
	}
}
