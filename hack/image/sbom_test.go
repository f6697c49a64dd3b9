package main

import "testing"

func TestPurl(t *testing.T) {
	for _, tc := range []struct{ path, version, want string }{
		{"k8s.io/apiserver", "v0.37.2", "pkg:golang/k8s.io/apiserver@v0.37.2"},
		{"github.com/docker/cli", "v29.7.2+incompatible", "pkg:golang/github.com/docker/cli@v29.7.2%2Bincompatible"},
		{"github.com/Azure/go-autorest", "v14.2.0+incompatible", "pkg:golang/github.com/Azure/go-autorest@v14.2.0%2Bincompatible"},
		{"gopkg.in/yaml.v3", "v3.0.1", "pkg:golang/gopkg.in/yaml.v3@v3.0.1"},
		{"github.com/exec-proxy/exec-proxy", "(devel)", "pkg:golang/github.com/exec-proxy/exec-proxy"},
		{"stdlib", "go1.26.8", "pkg:golang/stdlib@go1.26.8"},
	} {
		if got := purl(tc.path, tc.version); got != tc.want {
			t.Errorf("purl(%q, %q) = %q, want %q", tc.path, tc.version, got, tc.want)
		}
	}
}

func TestSPDXID(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"k8s.io/apiserver", "SPDXRef-Package-k8s.io-apiserver"},
		{"gopkg.in/natefinch/lumberjack.v2", "SPDXRef-Package-gopkg.in-natefinch-lumberjack.v2"},
		{"github.com/a_b/c~d", "SPDXRef-Package-github.com-a-b-c-d"},
	} {
		if got := spdxID(tc.path); got != tc.want {
			t.Errorf("spdxID(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}
