package api

import (
	"fmt"
	"net/url"
	"strconv"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
)

// Bounds on what a client may ask for: a command line longer than this is refused rather than
// forwarded to the kubelet (which would reject it anyway, after a TLS handshake).
const (
	maxArgs       = 1024
	maxArgvBytes  = 128 << 10
	maxPorts      = 64
	maxNameLength = 253
)

func addConversionFuncs(s *runtime.Scheme) error {
	if err := s.AddConversionFunc((*url.Values)(nil), (*corev1.PodExecOptions)(nil),
		func(a, b interface{}, _ conversion.Scope) error {
			return ExecOptionsFromQuery(*a.(*url.Values), b.(*corev1.PodExecOptions))
		}); err != nil {
		return err
	}
	if err := s.AddConversionFunc((*url.Values)(nil), (*corev1.PodAttachOptions)(nil),
		func(a, b interface{}, _ conversion.Scope) error {
			return AttachOptionsFromQuery(*a.(*url.Values), b.(*corev1.PodAttachOptions))
		}); err != nil {
		return err
	}
	return s.AddConversionFunc((*url.Values)(nil), (*corev1.PodPortForwardOptions)(nil),
		func(a, b interface{}, _ conversion.Scope) error {
			return PortForwardOptionsFromQuery(*a.(*url.Values), b.(*corev1.PodPortForwardOptions))
		})
}

// ExecOptionsFromQuery parses the query parameters of pods/exec.
func ExecOptionsFromQuery(q url.Values, o *corev1.PodExecOptions) error {
	var err error
	if o.Container, err = container(q); err != nil {
		return err
	}
	flags := []struct {
		name string
		into *bool
	}{{"stdin", &o.Stdin}, {"stdout", &o.Stdout}, {"stderr", &o.Stderr}, {"tty", &o.TTY}}
	for _, f := range flags {
		if *f.into, err = boolParam(q, f.name); err != nil {
			return err
		}
	}
	o.Command, err = command(q["command"])
	return err
}

// AttachOptionsFromQuery parses the query parameters of pods/attach.
func AttachOptionsFromQuery(q url.Values, o *corev1.PodAttachOptions) error {
	var exec corev1.PodExecOptions
	if err := ExecOptionsFromQuery(q, &exec); err != nil {
		return err
	}
	if len(exec.Command) > 0 {
		return fmt.Errorf("attach takes no command parameter")
	}
	*o = corev1.PodAttachOptions{Stdin: exec.Stdin, Stdout: exec.Stdout, Stderr: exec.Stderr, TTY: exec.TTY, Container: exec.Container}
	return nil
}

// PortForwardOptionsFromQuery parses the ports parameters of pods/portforward.
func PortForwardOptionsFromQuery(q url.Values, o *corev1.PodPortForwardOptions) error {
	ports := q["ports"]
	if len(ports) > maxPorts {
		return fmt.Errorf("at most %d ports may be forwarded at once, got %d", maxPorts, len(ports))
	}
	o.Ports = o.Ports[:0]
	for _, p := range ports {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("invalid port %q: must be a number from 1 to 65535", p)
		}
		o.Ports = append(o.Ports, int32(n))
	}
	return nil
}

func container(q url.Values) (string, error) {
	values, ok := q["container"]
	if !ok {
		return "", nil
	}
	if len(values) != 1 || values[0] == "" {
		return "", fmt.Errorf("container parameter must be given once and not be empty")
	}
	if len(values[0]) > maxNameLength || !utf8.ValidString(values[0]) {
		return "", fmt.Errorf("container parameter is not a valid container name")
	}
	return values[0], nil
}

// boolParam accepts what strconv.ParseBool does (kubectl sends "true"/"1") and refuses the rest,
// instead of silently reading a typo as false.
func boolParam(q url.Values, name string) (bool, error) {
	values := q[name]
	if len(values) == 0 {
		return false, nil
	}
	if len(values) > 1 {
		return false, fmt.Errorf("parameter %s given %d times", name, len(values))
	}
	b, err := strconv.ParseBool(values[0])
	if err != nil {
		return false, fmt.Errorf("parameter %s=%q is not a boolean (use true or false)", name, values[0])
	}
	return b, nil
}

func command(args []string) ([]string, error) {
	if len(args) > maxArgs {
		return nil, fmt.Errorf("command has %d arguments, at most %d are allowed", len(args), maxArgs)
	}
	total := 0
	for _, a := range args {
		total += len(a)
		if !utf8.ValidString(a) {
			return nil, fmt.Errorf("command argument %q is not valid UTF-8", a)
		}
	}
	if total > maxArgvBytes {
		return nil, fmt.Errorf("command is %d bytes long, at most %d are allowed", total, maxArgvBytes)
	}
	if len(args) == 0 {
		return nil, nil
	}
	return append([]string(nil), args...), nil
}
