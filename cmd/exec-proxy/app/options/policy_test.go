package options

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyRecordingNeedsADir: a session policy whose rules choose recording records nothing
// without --recording-dir, so it is refused, at start and at a reload.
func TestPolicyRecordingNeedsADir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	write := func(rules string) {
		if err := os.WriteFile(path, []byte("apiVersion: execproxy.dev/v1alpha1\nkind: SessionPolicy\nrules:\n"+rules), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	recorded := "- name: r\n  recording: {record: all}\n"
	cases := []struct {
		name, rules, recordingDir, err string
	}{
		{"recording without a dir", recorded, "", "there is no --recording-dir"},
		{"recording with a dir", recorded, dir, ""},
		{"no recording, no dir", "- name: r\n  stdin: deny\n", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			write(tc.rules)
			o := &PolicyOptions{File: path}
			errs := o.Validate(tc.recordingDir)
			if (tc.err == "") != (len(errs) == 0) || (len(errs) > 0 && !strings.Contains(errs[0].Error(), tc.err)) {
				t.Errorf("got %v, want %q", errs, tc.err)
			}
		})
	}
}
