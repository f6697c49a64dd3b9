package policy

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/exec-proxy/exec-proxy/pkg/recording"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// Session is what the policy knows of a session when it decides: its request, its user and its
// pod's labels.
type Session struct {
	Kind          session.Kind
	Namespace     string
	Pod           string
	PodLabels     map[string]string
	User          string
	Groups        []string
	Command       []string
	TTY, Stdin    bool
	Justification string // the reason the user gave, if any
}

// Decision is how an allowed session runs: the rule that matched ("" when none did), and what the
// rule says of recording (nil: the flags decide), of limits (zero: the flags') and of moderation
// (nil: none; its durations are set).
type Decision struct {
	Rule       string
	Recording  *recording.Choice
	Limits     Limits
	Moderation *Moderation
}

// Decide finds the rule s falls under and checks s against it (s.Justification is checked
// already: session.Justification). A refusal is a 403 Status that
// names the rule and says what would be allowed; the Decision still names the rule.
func (p *Policy) Decide(s Session) (Decision, error) {
	if p == nil {
		return Decision{}, nil
	}
	for i := range p.rules {
		r := &p.rules[i]
		if !r.matches(s) {
			continue
		}
		d := Decision{Rule: r.Name, Recording: r.Recording, Limits: r.Limits, Moderation: r.RequireModerator}
		if why := r.refusal(s); why != "" {
			refusalsTotal.WithLabelValues(r.Name).Inc()
			return d, forbidden(s, fmt.Sprintf("session policy rule %q %s", r.Name, why))
		}
		return d, nil
	}
	return Decision{}, nil
}

func (r *rule) matches(s Session) bool {
	m := r.Match
	switch {
	case len(m.Namespaces) > 0 && !slices.Contains(m.Namespaces, s.Namespace),
		len(m.Kinds) > 0 && !slices.Contains(m.Kinds, s.Kind),
		r.selector != nil && !r.selector.Matches(labels.Set(s.PodLabels)):
		return false
	case len(m.Users) == 0 && len(m.Groups) == 0:
		return true
	}
	return slices.Contains(m.Users, s.User) || slices.ContainsFunc(s.Groups, func(g string) bool { return slices.Contains(m.Groups, g) })
}

// refusal says why the rule refuses s, or "" when it allows it.
func (r *rule) refusal(s Session) string {
	if r.RequireReason != nil {
		if why := r.reasonRefusal(s); why != "" {
			return why
		}
	}
	if r.RequireModerator != nil && (s.Kind == session.KindPortForward || !s.TTY) {
		return "requires a moderator, who watches the session's terminal: only exec and attach with a TTY (-it) can be moderated"
	}
	if s.Kind == session.KindPortForward {
		return ""
	}
	if r.Stdin == Deny && s.Stdin {
		return fmt.Sprintf("makes %s sessions read-only: run it without stdin (no -i/--stdin); output still flows", s.Kind)
	}
	if r.Commands == nil {
		return ""
	}
	if r.Commands.TTY == Deny && s.TTY {
		return fmt.Sprintf("allows no terminal: run %s without a TTY (no -t/--tty)", s.Kind)
	}
	if s.Kind == session.KindAttach && s.Stdin && len(r.allow) > 0 {
		return "allows listed commands only, and attach's input goes to the container's own command, which no list " +
			"matched: attach without stdin (no -i/--stdin)"
	}
	if s.Kind != session.KindExec {
		return ""
	}
	return r.commandRefusal(s.Command)
}

func (r *rule) reasonRefusal(s Session) string {
	how := fmt.Sprintf("kubectl execproxy %s --reason ...", map[session.Kind]string{
		session.KindExec: "exec", session.KindAttach: "attach", session.KindPortForward: "port-forward"}[s.Kind])
	switch {
	case s.Justification == "" && r.reason != nil:
		return fmt.Sprintf("requires a reason matching %s: give one with `%s` (stock kubectl cannot send one)", r.RequireReason.Pattern, how)
	case s.Justification == "":
		return fmt.Sprintf("requires a reason: give one with `%s` (stock kubectl cannot send one)", how)
	case r.reason != nil && !r.reason.MatchString(s.Justification):
		return fmt.Sprintf("requires a reason matching %s, and %q does not match", r.RequireReason.Pattern, s.Justification)
	}
	return ""
}

// commandRefusal checks an exec's argv against the rule's command lists.
func (r *rule) commandRefusal(argv []string) string {
	what := argv
	if r.Commands.ShellScripts == ShellScriptsMatch {
		if script, ok := shellScript(argv); ok {
			words, ok := plainWords(script)
			if !ok {
				return fmt.Sprintf("matches the scripts of `%s -c` and cannot tell what %q runs: only plain words "+
					"(no quotes, variables, redirections, pipes, globs or separators) are matched", argv[0], script)
			}
			if len(words) > 0 && shellOwn(words[0]) && !slices.ContainsFunc(r.allow, func(c command) bool { return c.argv0 == words[0] }) {
				return fmt.Sprintf("matches the scripts of `%s -c`, and the shell runs %q itself (a reserved word or builtin), "+
					"not as the program the lists match: only an allow entry naming %q lets it run", argv[0], words[0], words[0])
			}
			what = words
		}
	}
	if len(what) == 0 {
		return "allows listed commands only, and the session names none"
	}
	for _, c := range r.deny {
		if c.matches(what) {
			return fmt.Sprintf("denies the command %s", quoteArgv(what))
		}
	}
	if len(r.allow) == 0 {
		return ""
	}
	for _, c := range r.allow {
		if c.matches(what) {
			return ""
		}
	}
	names := make([]string, 0, len(r.allow))
	for _, c := range r.allow {
		if !slices.Contains(names, c.argv0) {
			names = append(names, c.argv0)
		}
	}
	return fmt.Sprintf("does not allow the command %s; it allows %s", quoteArgv(what), strings.Join(names, ", "))
}

func (c command) matches(argv []string) bool {
	if argv[0] != c.argv0 {
		return false
	}
	if c.args == nil {
		return true
	}
	for _, a := range argv[1:] {
		if !slices.ContainsFunc(c.args, func(re *regexp.Regexp) bool { return re.MatchString(a) }) {
			return false
		}
	}
	return true
}

func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = strconv.Quote(a)
	}
	return "[" + strings.Join(q, " ") + "]"
}

func forbidden(s Session, msg string) error {
	return apierrors.NewForbidden(schema.GroupResource{Resource: "pods/" + string(s.Kind)}, s.Pod, errors.New(msg))
}
