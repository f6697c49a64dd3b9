// Package policy is the session policy: which rule a session falls under, and what that rule
// lets it do (stdin, commands, a terminal, without a reason) and how it runs (recording, limits).
// RBAC says who may exec; the policy says how. The first rule that matches a session decides;
// a session no rule matches runs as the flags say.
package policy

import (
	"cmp"
	"fmt"
	"os"
	"regexp"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"sigs.k8s.io/yaml"

	"github.com/exec-proxy/exec-proxy/pkg/recording"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// APIVersion and Kind head a session policy file, so that a later format can be told apart.
const (
	APIVersion = "execproxy.dev/v1alpha1"
	Kind       = "SessionPolicy"
)

// Allow and Deny are the values of Rule.Stdin and Commands.TTY; empty allows.
const (
	Allow = "allow"
	Deny  = "deny"
)

// What Commands.ShellScripts does with `sh -c SCRIPT`.
const (
	// ShellScriptsAsCommand (the default) matches it as the command sh, whatever the script.
	ShellScriptsAsCommand = "command"
	// ShellScriptsMatch matches the script's words as the command; a script with shell syntax
	// beyond plain words cannot be told and is refused.
	ShellScriptsMatch = "match"
)

// File is a session policy file as written.
type File struct {
	metav1.TypeMeta `json:",inline"`
	Rules           []Rule `json:"rules"`
}

// Rule says how the sessions it matches may run. Unset fields leave the flags' behaviour.
type Rule struct {
	// Name is named in refusals and in the audit record of every session the rule matches.
	Name  string `json:"name"`
	Match Match  `json:"match,omitempty"`
	// Stdin deny makes exec and attach read-only: a session that asks for stdin is refused.
	Stdin         string            `json:"stdin,omitempty"`
	Commands      *Commands         `json:"commands,omitempty"`
	RequireReason *Reason           `json:"requireReason,omitempty"`
	Recording     *recording.Choice `json:"recording,omitempty"`
	Limits        Limits            `json:"limits,omitempty"`
	// RequireModerator holds the rule's sessions until a moderator watches or joins them.
	RequireModerator *Moderation `json:"requireModerator,omitempty"`
}

// Match selects sessions: every field given must match (users and groups together: the user is
// one of Users or in one of Groups). An empty Match matches every session.
type Match struct {
	Namespaces  []string              `json:"namespaces,omitempty"`
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
	Users       []string              `json:"users,omitempty"`
	Groups      []string              `json:"groups,omitempty"`
	Kinds       []session.Kind        `json:"kinds,omitempty"` // exec, attach, portforward
}

// Commands restricts what exec runs and whether exec and attach may have a terminal.
type Commands struct {
	TTY string `json:"tty,omitempty"`
	// Allow, when not empty, is every command exec may run; Deny is refused even if allowed.
	Allow        []Command `json:"allow,omitempty"`
	Deny         []Command `json:"deny,omitempty"`
	ShellScripts string    `json:"shellScripts,omitempty"`
}

// Command matches an argv: Command is argv[0] exactly; each of the arguments must match one of
// Args (RE2, anchored at both ends). No Args: any arguments.
type Command struct {
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
}

// Reason requires a session to carry a reason (kubectl execproxy exec --reason ...) that
// matches Pattern (RE2, anchored at both ends); an empty Pattern takes any reason.
type Reason struct {
	Pattern string `json:"pattern,omitempty"`
}

// Moderation holds a session, before exec-proxy connects to its kubelet, until a moderator watches
// or joins it: someone other than its user who may moderate on execsessions/attach in its namespace.
// The session is ended once no moderator has been present for GracePeriod.
type Moderation struct {
	// Timeout is how long a session waits for its first moderator before it is refused.
	Timeout metav1.Duration `json:"timeout,omitempty"`
	// GracePeriod is how long a session goes on once its last moderator left.
	GracePeriod metav1.Duration `json:"gracePeriod,omitempty"`
}

// Moderation's defaults, and the most either may be: a waiting session holds its request.
const (
	DefaultModeratorTimeout     = 5 * time.Minute
	DefaultModeratorGracePeriod = 30 * time.Second
	maxModeration               = time.Hour
)

// Limits replace the flags' limits for a rule's sessions; zero leaves the flag's.
type Limits struct {
	MaxDuration    metav1.Duration `json:"maxDuration,omitempty"`
	IdleTimeout    metav1.Duration `json:"idleTimeout,omitempty"`
	MaxBytesPerSec int64           `json:"maxBytesPerSec,omitempty"` // each direction
	// MaxSessions and MaxSessionsPerUser bound the rule's concurrent sessions on a replica.
	MaxSessions        int `json:"maxSessions,omitempty"`
	MaxSessionsPerUser int `json:"maxSessionsPerUser,omitempty"`
}

// Policy is a checked session policy, ready to decide.
type Policy struct {
	rules []rule
}

// SetsRecording says whether a rule chooses recording, which needs --recording-dir.
func (p *Policy) SetsRecording() bool {
	return p != nil && slices.ContainsFunc(p.rules, func(r rule) bool { return r.Recording != nil })
}

// rule is a Rule with its patterns compiled.
type rule struct {
	Rule
	selector labels.Selector // nil: any pod
	allow    []command
	deny     []command
	reason   *regexp.Regexp
}

type command struct {
	argv0 string
	args  []*regexp.Regexp
}

// Load reads a session policy file (YAML or JSON). Unknown fields are errors, so that a typo does
// not silently allow more.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("session policy: %w", err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("session policy %s: %w", path, err)
	}
	return p, nil
}

// Parse checks a session policy file's content.
func Parse(data []byte) (*Policy, error) {
	var f File
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, err
	}
	if f.APIVersion != APIVersion || f.Kind != Kind {
		return nil, fmt.Errorf("apiVersion and kind must be %s and %s, not %q and %q", APIVersion, Kind, f.APIVersion, f.Kind)
	}
	return New(f.Rules)
}

// New checks rules and compiles their patterns.
func New(rules []Rule) (*Policy, error) {
	p := &Policy{}
	var errs []error
	names := map[string]bool{}
	for i, r := range rules {
		c, err := compile(r)
		switch {
		case r.Name == "":
			errs = append(errs, fmt.Errorf("rule %d: a name is required: refusals and audit records name the rule", i+1))
		case names[r.Name]:
			errs = append(errs, fmt.Errorf("rule %d: the name %q is used by an earlier rule", i+1, r.Name))
		}
		names[r.Name] = true
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %d (%s): %w", i+1, r.Name, err))
			continue
		}
		p.rules = append(p.rules, c)
	}
	if err := utilerrors.NewAggregate(errs); err != nil {
		return nil, err
	}
	return p, nil
}

func compile(r Rule) (rule, error) {
	c := rule{Rule: r}
	var errs []error
	oneOf := func(field, v string, allowed ...string) {
		if v != "" && !slices.Contains(allowed, v) {
			errs = append(errs, fmt.Errorf("%s must be one of %q, not %q", field, allowed, v))
		}
	}
	oneOf("stdin", r.Stdin, Allow, Deny)
	for _, k := range r.Match.Kinds {
		if !slices.Contains(session.Kinds, k) {
			errs = append(errs, fmt.Errorf("match.kinds: %q is none of %q", k, session.Kinds))
		}
	}
	if r.Match.PodSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(r.Match.PodSelector)
		if err != nil {
			errs = append(errs, fmt.Errorf("match.podSelector: %w", err))
		}
		c.selector = sel
	}
	if cmds := r.Commands; cmds != nil {
		oneOf("commands.tty", cmds.TTY, Allow, Deny)
		oneOf("commands.shellScripts", cmds.ShellScripts, ShellScriptsAsCommand, ShellScriptsMatch)
		var err error
		if c.allow, err = compileCommands("commands.allow", cmds.Allow); err != nil {
			errs = append(errs, err)
		}
		if c.deny, err = compileCommands("commands.deny", cmds.Deny); err != nil {
			errs = append(errs, err)
		}
	}
	if r.RequireReason != nil && r.RequireReason.Pattern != "" {
		re, err := anchored(r.RequireReason.Pattern)
		if err != nil {
			errs = append(errs, fmt.Errorf("requireReason.pattern: %w", err))
		}
		c.reason = re
	}
	if rec := r.Recording; rec != nil {
		oneOf("recording.record", rec.Record, recording.RecordAll, recording.RecordTTY, recording.RecordNone)
		if rec.Record == "" {
			errs = append(errs, fmt.Errorf("recording.record is required: %q, %q or %q", recording.RecordAll, recording.RecordTTY, recording.RecordNone))
		}
	}
	if m := r.RequireModerator; m != nil {
		if m.Timeout.Duration < 0 || m.GracePeriod.Duration < 0 || m.Timeout.Duration > maxModeration || m.GracePeriod.Duration > maxModeration {
			errs = append(errs, fmt.Errorf("requireModerator: timeout and gracePeriod must be between 0 (the defaults, %v and %v) and %v",
				DefaultModeratorTimeout, DefaultModeratorGracePeriod, maxModeration))
		}
		c.RequireModerator = &Moderation{Timeout: metav1.Duration{Duration: cmp.Or(m.Timeout.Duration, DefaultModeratorTimeout)},
			GracePeriod: metav1.Duration{Duration: cmp.Or(m.GracePeriod.Duration, DefaultModeratorGracePeriod)}}
	}
	l := r.Limits
	if l.MaxDuration.Duration < 0 || l.IdleTimeout.Duration < 0 || l.MaxBytesPerSec < 0 || l.MaxSessions < 0 || l.MaxSessionsPerUser < 0 {
		errs = append(errs, fmt.Errorf("limits must not be negative"))
	}
	return c, utilerrors.NewAggregate(errs)
}

func compileCommands(field string, cmds []Command) ([]command, error) {
	out := make([]command, 0, len(cmds))
	var errs []error
	for i, cmd := range cmds {
		if cmd.Command == "" {
			errs = append(errs, fmt.Errorf("%s[%d].command is required (argv[0], matched exactly)", field, i))
		}
		c := command{argv0: cmd.Command}
		for j, a := range cmd.Args {
			re, err := anchored(a)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s[%d].args[%d]: %w", field, i, j, err))
			}
			c.args = append(c.args, re)
		}
		out = append(out, c)
	}
	return out, utilerrors.NewAggregate(errs)
}

// anchored compiles an RE2 pattern that must match the whole string. The pattern must compile on
// its own first: wrapped, one such as `x)|(.*` would close the group and match anything.
func anchored(pattern string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(pattern); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + pattern + `)$`)
}
