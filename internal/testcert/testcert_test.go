package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
)

func TestCASignsServerAndClientCertificates(t *testing.T) {
	ca := NewCA(t, "test-ca")
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)

	server := ca.Sign(t, Leaf{CommonName: "server", IPs: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"server.invalid"}})
	for _, name := range []string{"127.0.0.1", "server.invalid"} {
		if _, err := server.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}

	client := ca.Sign(t, Leaf{CommonName: "user", Organization: []string{"group"}, Client: true})
	if _, err := client.Leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if s := client.Leaf.Subject; s.CommonName != "user" || len(s.Organization) != 1 || s.Organization[0] != "group" {
		t.Errorf("client subject = %v", s)
	}

	certFile, keyFile := WriteFiles(t, client)
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Errorf("written files: %v", err)
	}
	loaded := LoadCA(t, certFile, keyFile)
	if !loaded.Cert.Equal(client.Leaf) {
		t.Error("LoadCA read another certificate than WriteFiles wrote")
	}
}
