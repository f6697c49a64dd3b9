package session

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validation"
)

// validateStreams refuses what the kubelet would refuse only after a TLS handshake and an upgrade.
func validateStreams(kind Kind, stdin, stdout, stderr, noCommand bool) error {
	if kind == KindExec && noCommand {
		return apierrors.NewBadRequest("exec needs a command: give at least one command= parameter (kubectl exec POD -- COMMAND)")
	}
	if !stdin && !stdout && !stderr {
		return apierrors.NewBadRequest("at least one of stdin, stdout and stderr must be true")
	}
	return nil
}

// validateCommand refuses a command element holding a NUL, which a query parameter (%00) can carry
// and an argv cannot: execve ends the argument there (a runtime written in C cuts it, runc fails),
// so what would run is not the command the session policy matched and the records keep.
func validateCommand(command []string) error {
	for i, c := range command {
		if strings.ContainsRune(c, 0) {
			return apierrors.NewBadRequest(fmt.Sprintf("command element %d (%q) holds a NUL, which no argument can", i, c))
		}
	}
	return nil
}

// validateNames refuses a namespace or pod name no object can have (such as "..", or one with a
// space or a ';' that a path's spelling smuggled in): it is a 400 naming it, not a lookup.
func validateNames(namespace, pod string) error {
	if errs := validation.ValidateNamespaceName(namespace, false); len(errs) > 0 {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid namespace %q: %s", namespace, strings.Join(errs, "; ")))
	}
	if errs := validation.NameIsDNSSubdomain(pod, false); len(errs) > 0 {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid pod name %q: %s", pod, strings.Join(errs, "; ")))
	}
	return nil
}

// JustificationParam is the query parameter that carries the reason a user gives for a session
// (kubectl execproxy exec --reason): a session policy may require one, and the audit records keep
// it. It is exec-proxy's own: the kubelet's query is built anew and never carries it.
const JustificationParam = "reason"

// MaxJustification is the longest reason taken: it goes into every audit record of the session.
const MaxJustification = 256

// Justification is the reason query q gives, if any: one line of at most MaxJustification bytes,
// given once.
func Justification(q url.Values) (string, error) {
	vs := q[JustificationParam]
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", apierrors.NewBadRequest(fmt.Sprintf("the session's reason is given %d times; give it once", len(vs)))
	case len(vs[0]) > MaxJustification:
		return "", apierrors.NewBadRequest(fmt.Sprintf("the session's reason is %d bytes; at most %d are taken", len(vs[0]), MaxJustification))
	case !utf8.ValidString(vs[0]) || strings.ContainsFunc(vs[0], func(r rune) bool { return !unicode.IsPrint(r) }):
		// IsPrint, not only IsControl: format characters (bidi overrides) would make the audit
		// record read otherwise than it is written.
		return "", apierrors.NewBadRequest("the session's reason must be one line of printable UTF-8 text, without control or format characters")
	}
	return vs[0], nil
}
