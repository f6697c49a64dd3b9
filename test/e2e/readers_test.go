//go:build e2e

package e2e

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/moby/spdystream/spdy"
)

// spdyFrames writes a client's SPDY frames with spdystream's own framer (one header compression
// for the connection, as a client has it).
type spdyFrames struct {
	t   *testing.T
	buf bytes.Buffer
	f   *spdy.Framer
}

func newSPDYFrames(t *testing.T) *spdyFrames {
	w := &spdyFrames{t: t}
	f, err := spdy.NewFramer(&w.buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.f = f
	return w
}

func (w *spdyFrames) write(frame spdy.Frame) *spdyFrames {
	if err := w.f.WriteFrame(frame); err != nil {
		w.t.Fatal(err)
	}
	return w
}

// TestSPDYStdinHeaderWithNUL: a stream opened with "streamtype: stdin\x00x" is stdin to the kubelet
// (spdystream splits header values at NULs; http.Header's Get takes the first). exec-proxy reads it
// so too: the input reaches cat, the output comes back, and the end record counts both with the
// exit code, where it once recorded neither and a false "kubelet disconnected".
func TestSPDYStdinHeaderWithNUL(t *testing.T) {
	runCheck(t, "reader: SPDY stdin\\x00x", false, checkSPDYStdinHeaderWithNUL)
}

func checkSPDYStdinHeaderWithNUL(p *probe) {
	t := p.t
	m := marker(t)
	conn, r, resp := sendUpgrade(t, "admin", spdyUpgrade, execPath("cat # "+m, true))
	defer conn.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %d", resp.StatusCode)
	}
	input := "typed-" + m + "\n"
	w := newSPDYFrames(t)
	w.write(&spdy.SynStreamFrame{StreamId: 1, Headers: http.Header{"Streamtype": {"error"}}})
	w.write(&spdy.SynStreamFrame{StreamId: 3, Headers: http.Header{"Streamtype": {"stdout"}}})
	w.write(&spdy.SynStreamFrame{StreamId: 5, Headers: http.Header{"Streamtype": {"stdin", "x"}}}) // "stdin\x00x"
	w.write(&spdy.DataFrame{StreamId: 5, Data: []byte(input)})
	w.write(&spdy.DataFrame{StreamId: 5, Flags: spdy.DataFlagFin})
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(w.buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	reader, err := spdy.NewFramer(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	var stdout []byte
	for {
		frame, err := reader.ReadFrame()
		if err != nil {
			break
		}
		if d, ok := frame.(*spdy.DataFrame); ok && d.StreamId == 3 {
			stdout = append(stdout, d.Data...)
		}
	}
	p.count(1, 0, 1, int64(len(stdout)))
	if string(stdout) != input {
		p.finding("SPDY stdin\\x00x: stdout %q, want %q: the kubelet took the stream as stdin", stdout, input)
	}
	a := endRecord(t, m).Annotations
	n := strconv.Itoa(len(input))
	if a[annotation+"reason"] != "exited" || a[annotation+"exit-code"] != "0" ||
		a[annotation+"bytes-stdin"] != n || a[annotation+"bytes-stdout"] != n {
		p.finding("SPDY stdin\\x00x: end record %v, want exited 0 with %s bytes of stdin and stdout", a, n)
	}
}

// TestSPDYPortForwardPortHeader: the kubelet forwards each SPDY stream to the port its own port
// header names, not the query's. A stream to a port the request did not name ends the session as
// a client protocol error before the kubelet sees it; the record names the request's port.
func TestSPDYPortForwardPortHeader(t *testing.T) {
	runCheck(t, "reader: SPDY port header", false, checkSPDYPortForwardPortHeader)
}

func checkSPDYPortForwardPortHeader(p *probe) {
	t := p.t
	skip := len(auditEvents(t, "exec-proxy-audit.log"))
	conn, r, resp := sendUpgrade(t, "admin", pfUpgrade, "/apis/execproxy.dev/v1alpha1/namespaces/demo/pods/demo/portforward?ports=80")
	defer conn.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %d", resp.StatusCode)
	}
	w := newSPDYFrames(t)
	w.write(&spdy.SynStreamFrame{StreamId: 1, Headers: http.Header{"Streamtype": {"error"}, "Port": {"22"}, "Requestid": {"0"}}})
	w.write(&spdy.SynStreamFrame{StreamId: 3, Headers: http.Header{"Streamtype": {"data"}, "Port": {"22"}, "Requestid": {"0"}}})
	w.write(&spdy.DataFrame{StreamId: 3, Data: []byte("SSH-2.0-probe\r\n")})
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	_, _ = conn.Write(w.buf.Bytes()) // may fail once exec-proxy ended the session
	reader, err := spdy.NewFramer(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	for {
		frame, err := reader.ReadFrame()
		if err != nil {
			break
		}
		if d, ok := frame.(*spdy.DataFrame); ok && len(d.Data) > 0 {
			p.finding("port header: stream %d carried %q: the kubelet reached port 22", d.StreamId, d.Data)
		}
	}
	var ends []map[string]string
	eventually(t, 10*time.Second, "the port-forward's end record", func() bool {
		ends = nil
		for _, ev := range endRecordsSince(t, skip, "portforward", "admin") {
			ends = append(ends, ev.Annotations)
		}
		return len(ends) > 0
	})
	a := ends[len(ends)-1]
	p.count(1, b2i(a[annotation+"reason"] == "client protocol error"), 1, 0)
	if a[annotation+"reason"] != "client protocol error" || a[annotation+"ports"] != "[80]" || a[annotation+"bytes-data"] != "" {
		p.finding("port header: end record %v, want client protocol error, ports [80], no data", a)
	}
}

// TestWSContinuationFrames: x/net/websocket reads every frame as a message whose first byte is its
// channel, continuation frames included. A continuation frame "on stdout" is no input to the
// kubelet and no output either: the record counts the stdin the command got and the output it made.
func TestWSContinuationFrames(t *testing.T) {
	runCheck(t, "reader: WebSocket continuation frames", false, checkWSContinuationFrames)
}

func checkWSContinuationFrames(p *probe) {
	t := p.t
	m := marker(t)
	conn, r, resp := sendUpgrade(t, "admin", wsUpgrade, execPath("cat # "+m, true))
	defer conn.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %d", resp.StatusCode)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	frame := func(fin bool, opcode byte, payload string) []byte {
		head := []byte{opcode, 0x80 | byte(len(payload)), 0, 0, 0, 0} // masked with a zero key
		if fin {
			head[0] |= 0x80
		}
		return append(head, payload...)
	}
	input := "typed-" + m + "\n"
	var frames []byte
	frames = append(frames, frame(false, 2, "\x00"+input)...)
	frames = append(frames, frame(true, 0, "\x01\x1b[2Jforged-output")...) // a message on stdout: ignored
	frames = append(frames, frame(true, 2, "\xff\x00")...)                 // v5: close stdin
	if _, err := conn.Write(frames); err != nil {
		t.Fatal(err)
	}
	var stdout []byte
	for {
		var head [2]byte
		if _, err := io.ReadFull(r, head[:]); err != nil || head[0]&0x0f == 8 {
			break
		}
		payload := make([]byte, head[1]&0x7f) // the kubelet's frames here are short
		if _, err := io.ReadFull(r, payload); err != nil {
			break
		}
		if len(payload) > 0 && payload[0] == 1 {
			stdout = append(stdout, payload[1:]...)
		}
	}
	p.count(1, 0, 1, int64(len(stdout)))
	if string(stdout) != input {
		p.finding("continuation frames: stdout %q, want %q", stdout, input)
	}
	a := endRecord(t, m).Annotations
	n := strconv.Itoa(len(input))
	if a[annotation+"bytes-stdin"] != n || a[annotation+"bytes-stdout"] != n || a[annotation+"exit-code"] != "0" {
		p.finding("continuation frames: end record %v, want %s bytes of stdin and stdout, exit 0", a, n)
	}
}

// TestReliabilityReaderDisagreement: inputs on which exec-proxy's frame readers once read other
// than the kubelet: each is read as the kubelet reads it, or refused, never accepted with a wrong record.
func TestReliabilityReaderDisagreement(t *testing.T) {
	runCheck(t, "reader disagreement (NUL, port header, continuation)", false, func(p *probe) {
		before := execProxyFigures(t)
		checkSPDYStdinHeaderWithNUL(p)
		checkSPDYPortForwardPortHeader(p)
		checkWSContinuationFrames(p)
		p.leakCheck(before)
	})
}
