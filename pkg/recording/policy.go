package recording

import (
	"fmt"
	"os"
	"slices"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"sigs.k8s.io/yaml"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// What a recording rule records.
const (
	RecordAll  = "all"  // every exec and attach session
	RecordTTY  = "tty"  // sessions with a terminal
	RecordNone = "none" // nothing
)

// Policy chooses the sessions to record; the first rule that matches a session decides,
// and a session no rule matches is recorded as the flags say.
type Policy struct {
	Rules []Rule `json:"rules"`
}

// Rule matches sessions in one of Namespaces (any, when empty) by a user in Users or a
// member of one of Groups (anyone, when both are empty).
type Rule struct {
	Namespaces []string `json:"namespaces,omitempty"`
	Users      []string `json:"users,omitempty"`
	Groups     []string `json:"groups,omitempty"`
	Record     string   `json:"record"`          // all, tty or none
	Stdin      *bool    `json:"stdin,omitempty"` // record input too; unset: --record-stdin
}

// LoadPolicy reads a policy file (YAML or JSON); unknown fields are errors, so a typo
// does not silently record less.
func LoadPolicy(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("recording policy: %w", err)
	}
	var p Policy
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return nil, fmt.Errorf("recording policy %s: %w", path, err)
	}
	var errs []error
	for i, r := range p.Rules {
		if r.Record != RecordAll && r.Record != RecordTTY && r.Record != RecordNone {
			errs = append(errs, fmt.Errorf("rule %d: record must be %q, %q or %q, not %q", i+1, RecordAll, RecordTTY, RecordNone, r.Record))
		}
	}
	if err := utilerrors.NewAggregate(errs); err != nil {
		return nil, fmt.Errorf("recording policy %s: %w", path, err)
	}
	return &p, nil
}

func (r Rule) matches(s Session) bool {
	if len(r.Namespaces) > 0 && !slices.Contains(r.Namespaces, s.Namespace) {
		return false
	}
	if len(r.Users) == 0 && len(r.Groups) == 0 {
		return true
	}
	return slices.Contains(r.Users, s.User) || slices.ContainsFunc(s.Groups, func(g string) bool { return slices.Contains(r.Groups, g) })
}

// Decide says whether s is recorded, and whether with its input.
func (c Config) Decide(s Session) (record, stdin bool) {
	if c.Dir == "" || s.Kind == session.KindPortForward {
		return false, false
	}
	what, stdin := RecordTTY, c.Stdin
	if c.NonTTY {
		what = RecordAll
	}
	if c.Policy != nil {
		for _, r := range c.Policy.Rules {
			if r.matches(s) {
				what = r.Record
				if r.Stdin != nil {
					stdin = *r.Stdin
				}
				break
			}
		}
	}
	return what == RecordAll || (what == RecordTTY && s.TTY), stdin
}
