package spdyclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/tools/remotecommand"
	clientspdy "k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"
	kubeletrc "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"go.uber.org/goleak"
)

// noLeaks fails t if goroutines started during it are still running at its end; the kubelet's
// spdystream may take a moment to end its own.
func noLeaks(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		for i := 0; i < 60 && goleak.Find(before) != nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
		goleak.VerifyNone(t, before)
	})
}

// container is the kubelet's: "cat" echoes stdin; "both OUT ERR" writes to stdout and stderr;
// "exit N" fails with code N; "size" prints the first terminal size; "stream N" writes N KiB.
type container struct{}

func (container) ExecInContainer(_ context.Context, _, _, _ string, cmd []string, in io.Reader, out, errOut io.WriteCloser, _ bool, resize <-chan kubeletrc.TerminalSize, _ time.Duration) error {
	switch cmd[0] {
	case "cat":
		_, err := io.Copy(out, in)
		return err
	case "both":
		if _, err := io.WriteString(out, cmd[1]); err != nil {
			return err
		}
		_, err := io.WriteString(errOut, cmd[2])
		return err
	case "exit":
		code, _ := strconv.Atoi(cmd[1])
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	case "size":
		size := <-resize
		_, err := fmt.Fprintf(out, "%d %d", size.Height, size.Width)
		return err
	case "stream":
		n, _ := strconv.Atoi(cmd[1])
		_, err := out.Write(bytes.Repeat([]byte("x"), n<<10))
		return err
	}
	return fmt.Errorf("unknown command %q", cmd[0])
}

// kubelet serves exec with the kubelet's own remotecommand server (spdystream underneath).
func kubelet(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		opts, err := kubeletrc.NewOptions(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		kubeletrc.ServeExec(w, req, container{}, "pod", "", "c", req.URL.Query()["command"], opts, time.Minute,
			30*time.Second, remotecommandconsts.SupportedStreamingProtocols)
	}))
	t.Cleanup(srv.Close)
	return srv
}

type sizes []remotecommand.TerminalSize

func (s *sizes) Next() *remotecommand.TerminalSize {
	if len(*s) == 0 {
		return nil
	}
	size := (*s)[0]
	*s = (*s)[1:]
	return &size
}

// client-go's remotecommand executor, as the stream translator builds it, over this package's
// connection to the kubelet's own server: every stream, exit codes, terminal sizes.
func TestExecAgainstTheKubeletsServer(t *testing.T) {
	noLeaks(t)
	srv := kubelet(t)
	for _, c := range []struct {
		name             string
		command          []string
		stdin            string
		tty              bool
		sizes            sizes
		stdout, stderr   string
		exitCode         int // -1: no error
		wantErrSubstring string
	}{
		{name: "stdin to stdout", command: []string{"cat"}, stdin: "hello", stdout: "hello", exitCode: -1},
		{name: "stdout and stderr", command: []string{"both", "out", "err"}, stdout: "out", stderr: "err", exitCode: -1},
		{name: "exit code", command: []string{"exit", "3"}, exitCode: 3},
		{name: "terminal size", command: []string{"size"}, tty: true, sizes: sizes{{Width: 80, Height: 24}}, stdout: "24 80", exitCode: -1},
		{name: "more than the stream's buffer", command: []string{"stream", "200"}, stdout: strings.Repeat("x", 200<<10), exitCode: -1},
		{name: "stdin larger than a frame", command: []string{"cat"}, stdin: strings.Repeat("y", 100<<10), stdout: strings.Repeat("y", 100<<10), exitCode: -1},
		{name: "unknown command", command: []string{"nope"}, exitCode: -1, wantErrSubstring: `unknown command "nope"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := url.Values{"command": c.command, "output": {"1"}}
			if c.stdin != "" {
				q.Set("input", "1")
			}
			if c.tty {
				q.Set("tty", "1")
			} else {
				q.Set("error", "1")
			}
			loc, _ := url.Parse(srv.URL + "/exec?" + q.Encode())
			u := &Upgrader{Dial: (&net.Dialer{}).DialContext, PingPeriod: time.Hour}
			e, err := remotecommand.NewSPDYExecutorRejectRedirects(u, clientspdy.NewUpgraderForStreaming(u), "POST", loc)
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			opts := remotecommand.StreamOptions{Stdout: &stdout, Tty: c.tty}
			if !c.tty {
				opts.Stderr = &stderr
			}
			if c.stdin != "" {
				opts.Stdin = strings.NewReader(c.stdin)
			}
			if c.tty {
				opts.TerminalSizeQueue = &c.sizes
			}
			err = e.StreamWithContext(context.Background(), opts)
			var exitErr exec.CodeExitError
			switch {
			case c.wantErrSubstring != "":
				if err == nil || !strings.Contains(err.Error(), c.wantErrSubstring) {
					t.Errorf("error %v, want one with %q", err, c.wantErrSubstring)
				}
			case c.exitCode >= 0:
				if !errors.As(err, &exitErr) || exitErr.ExitStatus() != c.exitCode {
					t.Errorf("error %v, want exit code %d", err, c.exitCode)
				}
			case err != nil:
				t.Errorf("error %v", err)
			}
			if stdout.String() != c.stdout || stderr.String() != c.stderr {
				t.Errorf("stdout %.40q (%d bytes), stderr %q; want %.40q (%d bytes), %q", stdout.String(), stdout.Len(), stderr.String(),
					c.stdout, len(c.stdout), c.stderr)
			}
		})
	}
}

// A refusal reaches the executor as upstream's SpdyRoundTripper words it.
func TestUpgradeRefused(t *testing.T) {
	noLeaks(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"kind":"Status","message":"no exec for you"}`)
	}))
	defer srv.Close()
	loc, _ := url.Parse(srv.URL + "/exec?command=cat&output=1")
	u := &Upgrader{Dial: (&net.Dialer{}).DialContext}
	e, _ := remotecommand.NewSPDYExecutorRejectRedirects(u, clientspdy.NewUpgraderForStreaming(u), "POST", loc)
	err := e.StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdout: io.Discard})
	if err == nil || err.Error() != "unable to upgrade connection: no exec for you" {
		t.Errorf("error %v", err)
	}
}
