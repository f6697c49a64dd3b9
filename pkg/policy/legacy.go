package policy

import (
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/exec-proxy/exec-proxy/pkg/recording"
)

// recordingPolicy is the format of --recording-policy-file, before the session policy grew out of
// it: rules that choose only what is recorded.
type recordingPolicy struct {
	Rules []recordingRule `json:"rules"`
}

type recordingRule struct {
	Namespaces []string `json:"namespaces,omitempty"`
	Users      []string `json:"users,omitempty"`
	Groups     []string `json:"groups,omitempty"`
	Record     string   `json:"record"`          // all, tty or none
	Stdin      *bool    `json:"stdin,omitempty"` // record input too; unset: --record-stdin
}

// ParseRecordingPolicy reads a --recording-policy-file as the session policy it stands for: each
// of its rules, named "recording-N", sets recording only. Unknown fields are errors.
func ParseRecordingPolicy(data []byte) (*Policy, error) {
	var old recordingPolicy
	if err := yaml.UnmarshalStrict(data, &old); err != nil {
		return nil, err
	}
	rules := make([]Rule, len(old.Rules))
	for i, r := range old.Rules {
		rules[i] = Rule{
			Name:      fmt.Sprintf("recording-%d", i+1),
			Match:     Match{Namespaces: r.Namespaces, Users: r.Users, Groups: r.Groups},
			Recording: &recording.Choice{Record: r.Record, Stdin: r.Stdin},
		}
	}
	return New(rules)
}
