package kubeletconn

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// Path is the kubelet's path for r's session into container, as kube-apiserver writes it.
func Path(r session.Request, container string) string {
	if r.Kind == session.KindPortForward {
		return fmt.Sprintf("/portForward/%s/%s", url.PathEscape(r.Namespace), url.PathEscape(r.Pod))
	}
	return fmt.Sprintf("/%s/%s/%s/%s", r.Kind, url.PathEscape(r.Namespace), url.PathEscape(r.Pod), url.PathEscape(container))
}

// Query is the kubelet's parameter spelling (input/output/error), as kube-apiserver sends it.
func Query(r session.Request) url.Values {
	q := url.Values{}
	flag := func(name string, on bool) {
		if on {
			q.Add(name, "1")
		}
	}
	switch {
	case r.Exec != nil:
		flag(corev1.ExecStdinParam, r.Exec.Stdin)
		flag(corev1.ExecStdoutParam, r.Exec.Stdout)
		flag(corev1.ExecStderrParam, r.Exec.Stderr)
		flag(corev1.ExecTTYParam, r.Exec.TTY)
		for _, c := range r.Exec.Command {
			q.Add("command", c)
		}
	case r.Attach != nil:
		flag(corev1.ExecStdinParam, r.Attach.Stdin)
		flag(corev1.ExecStdoutParam, r.Attach.Stdout)
		flag(corev1.ExecStderrParam, r.Attach.Stderr)
		flag(corev1.ExecTTYParam, r.Attach.TTY)
	case r.PortForward != nil && len(r.PortForward.Ports) > 0:
		ports := make([]string, len(r.PortForward.Ports))
		for i, port := range r.PortForward.Ports {
			ports[i] = strconv.Itoa(int(port))
		}
		q.Add(corev1.PortHeader, strings.Join(ports, ","))
	}
	return q
}
