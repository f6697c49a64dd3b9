package api

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
)

func TestExecOptionsFromQuery(t *testing.T) {
	cases := []struct {
		name    string
		query   string
		want    corev1.PodExecOptions
		wantErr string
	}{
		{"kubectl's exec", "command=sh&command=-c&command=echo+hi&container=main&stdin=true&stdout=true&tty=true",
			corev1.PodExecOptions{Command: []string{"sh", "-c", "echo hi"}, Container: "main", Stdin: true, Stdout: true, TTY: true}, ""},
		{"1 is true", "command=ls&stdout=1&stderr=1", corev1.PodExecOptions{Command: []string{"ls"}, Stdout: true, Stderr: true}, ""},
		{"no container: chosen later", "command=ls&stdout=true", corev1.PodExecOptions{Command: []string{"ls"}, Stdout: true}, ""},
		{"typo in a bool", "command=ls&stdout=yes", corev1.PodExecOptions{}, `parameter stdout="yes" is not a boolean`},
		{"bool twice", "command=ls&stdin=true&stdin=false", corev1.PodExecOptions{}, "parameter stdin given 2 times"},
		{"empty container", "command=ls&container=", corev1.PodExecOptions{}, "container parameter must be given once and not be empty"},
		{"two containers", "command=ls&container=a&container=b", corev1.PodExecOptions{}, "container parameter must be given once"},
		{"too many args", "command=" + strings.Repeat("x&command=", maxArgs) + "x", corev1.PodExecOptions{}, "arguments, at most 1024 are allowed"},
		{"too long", "command=" + strings.Repeat("x", maxArgvBytes+1), corev1.PodExecOptions{}, "bytes long, at most"},
		{"not UTF-8", "command=%ff", corev1.PodExecOptions{}, "is not valid UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			var got corev1.PodExecOptions
			err = ExecOptionsFromQuery(q, &got)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v %v, want %+v", got, err, tc.want)
			}
		})
	}
}

func TestAttachAndPortForwardOptions(t *testing.T) {
	var attach corev1.PodAttachOptions
	if err := AttachOptionsFromQuery(url.Values{"stdin": {"true"}, "stdout": {"true"}, "container": {"c"}}, &attach); err != nil ||
		!reflect.DeepEqual(attach, corev1.PodAttachOptions{Stdin: true, Stdout: true, Container: "c"}) {
		t.Errorf("attach: %+v %v", attach, err)
	}
	if err := AttachOptionsFromQuery(url.Values{"command": {"ls"}}, &attach); err == nil {
		t.Error("attach with a command accepted")
	}
	cases := []struct {
		ports   []string
		want    []int32
		wantErr string
	}{
		{[]string{"8080", "53"}, []int32{8080, 53}, ""},
		{nil, nil, ""},
		{[]string{"0"}, nil, `invalid port "0"`},
		{[]string{"65536"}, nil, `invalid port "65536"`},
		{[]string{"http"}, nil, `invalid port "http"`},
		{make([]string, maxPorts+1), nil, "at most 64 ports"},
	}
	for _, tc := range cases {
		var pf corev1.PodPortForwardOptions
		err := PortForwardOptionsFromQuery(url.Values{"ports": tc.ports}, &pf)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ports %v: got %v, want %q", tc.ports, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(pf.Ports, tc.want) {
			t.Errorf("ports %v: got %v %v, want %v", tc.ports, pf.Ports, err, tc.want)
		}
	}
}

// FuzzQueryParsing: any query string is either refused with an error or parsed into options that
// keep the bounds exec-proxy promises the kubelet; it never panics.
func FuzzQueryParsing(f *testing.F) {
	for _, seed := range []string{
		"command=ls&command=-l&container=main&stdin=true&stdout=1&tty=false",
		"command=sh&stderr=yes",
		"container=&command=x",
		"command=%ff%fe",
		"ports=8080&ports=0&ports=65536",
		"ports=80&ports=443",
		"stdin=true&stdin=false",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		var exec corev1.PodExecOptions
		if ExecOptionsFromQuery(q, &exec) == nil {
			total := 0
			for _, a := range exec.Command {
				total += len(a)
				if !utf8.ValidString(a) {
					t.Errorf("accepted a non-UTF-8 argument %q", a)
				}
			}
			if len(exec.Command) > maxArgs || total > maxArgvBytes || len(exec.Container) > maxNameLength {
				t.Errorf("accepted options past the bounds: %d args, %d bytes, container %d bytes", len(exec.Command), total, len(exec.Container))
			}
		}
		var attach corev1.PodAttachOptions
		if AttachOptionsFromQuery(q, &attach) == nil && len(q["command"]) > 0 && q["command"][0] != "" {
			t.Errorf("attach accepted a command: %v", q["command"])
		}
		var pf corev1.PodPortForwardOptions
		if PortForwardOptionsFromQuery(q, &pf) == nil {
			for _, p := range pf.Ports {
				if p < 1 || p > 65535 {
					t.Errorf("accepted port %d", p)
				}
			}
			if len(pf.Ports) > maxPorts {
				t.Errorf("accepted %d ports", len(pf.Ports))
			}
		}
	})
}
