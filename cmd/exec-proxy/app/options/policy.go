package options

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/exec-proxy/exec-proxy/pkg/policy"
)

// PolicyOptions say where the session policy is.
type PolicyOptions struct {
	File string
	// RecordingFile is the older --recording-policy-file: rules that choose recording only.
	RecordingFile string
}

func NewPolicyOptions() *PolicyOptions { return &PolicyOptions{} }

func (o *PolicyOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.File, "session-policy-file", o.File,
		"YAML file of the session policy (kind SessionPolicy): rules matched on namespace, pod labels, user, group and kind, the first match wins, "+
			"that make sessions read-only, restrict commands and terminals, require a reason, and set recording and limits. "+
			"Read again when it changes; a file that does not parse leaves the last good policy in force. See docs/session-policy.md.")
	fs.StringVar(&o.RecordingFile, "recording-policy-file", o.RecordingFile,
		"YAML file of rules (namespaces, users, groups → record all, tty or none; stdin) choosing the sessions to record; the first match wins, the flags decide the rest.")
	_ = fs.MarkDeprecated("recording-policy-file", "use --session-policy-file, whose rules set recording too (docs/session-policy.md)")
}

func (o *PolicyOptions) Validate(recordingDir string) []error {
	var errs []error
	switch {
	case o.File != "" && o.RecordingFile != "":
		errs = append(errs, fmt.Errorf("give --session-policy-file or the older --recording-policy-file, not both: the session policy's rules set recording too"))
	case o.RecordingFile != "" && recordingDir == "":
		errs = append(errs, fmt.Errorf("--recording-policy-file needs --recording-dir"))
	}
	if _, err := o.Source(recordingDir); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// Source reads the policy file given; nil when none is. Without a recording directory, a policy
// whose rules choose recording is refused, at start and at every reload: it would record nothing.
func (o *PolicyOptions) Source(recordingDir string) (*policy.Source, error) {
	check := func(parse func([]byte) (*policy.Policy, error)) func([]byte) (*policy.Policy, error) {
		return func(data []byte) (*policy.Policy, error) {
			p, err := parse(data)
			if err == nil && recordingDir == "" && p.SetsRecording() {
				return nil, fmt.Errorf("a rule sets recording, and there is no --recording-dir to record into")
			}
			return p, err
		}
	}
	switch {
	case o.File != "":
		return policy.NewSource(o.File, check(policy.Parse))
	case o.RecordingFile != "":
		return policy.NewSource(o.RecordingFile, check(policy.ParseRecordingPolicy))
	}
	return nil, nil
}
