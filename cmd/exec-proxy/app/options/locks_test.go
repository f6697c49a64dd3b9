package options

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLockNamespace(t *testing.T) {
	dir := t.TempDir()
	inPod := filepath.Join(dir, "namespace")
	if err := os.WriteFile(inPod, []byte("execproxy-system\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, flag, peers, file, want string
	}{
		{"the flag", "locks", "replicas", inPod, "locks"},
		{"the replicas' namespace", "", "replicas", inPod, "replicas"},
		{"the pod's namespace", "", "", inPod, "execproxy-system"},
		{"none outside a pod", "", "", filepath.Join(dir, "absent"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func(old string) { serviceAccountNamespace = old }(serviceAccountNamespace)
			serviceAccountNamespace = tc.file
			o := &LockOptions{Namespace: tc.flag}
			o.Complete(tc.peers)
			if o.Namespace != tc.want {
				t.Errorf("namespace %q, want %q", o.Namespace, tc.want)
			}
		})
	}
}
