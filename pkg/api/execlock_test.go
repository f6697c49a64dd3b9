package api

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/validation/path"
)

// TestLockName: every subject names a lock that is a valid path segment, readable when it can be,
// and two subjects never share one.
func TestLockName(t *testing.T) {
	tests := []struct {
		user, group string
		want        string // "" : a hash, user~... or group~...
	}{
		{"alice", "", "user-alice"},
		{"system:serviceaccount:ns:sa", "", "user-system:serviceaccount:ns:sa"},
		{"", "devs", "group-devs"},
		{"https://issuer.example.com#1234", "", ""},
		{"", "/team/x", ""},
		{"50%", "", ""},
		{"..", "", ""},
		{"a~b", "", ""},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		name := LockName(tc.user, tc.group)
		if msgs := path.IsValidPathSegmentName(name); len(msgs) > 0 {
			t.Errorf("LockName(%q, %q) = %q: %v", tc.user, tc.group, name, msgs)
		}
		switch {
		case tc.want != "" && name != tc.want:
			t.Errorf("LockName(%q, %q) = %q, want %q", tc.user, tc.group, name, tc.want)
		case tc.want == "" && !strings.Contains(name, "~"):
			t.Errorf("LockName(%q, %q) = %q, want a hash", tc.user, tc.group, name)
		}
		if other, ok := seen[name]; ok {
			t.Errorf("%q and %q share the lock name %q", other, tc.user+tc.group, name)
		}
		seen[name] = tc.user + tc.group
	}
}
