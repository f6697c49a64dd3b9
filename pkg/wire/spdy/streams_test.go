package spdy

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/spdystream/spdy"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
	"github.com/exec-proxy/exec-proxy/pkg/wire/wiretest"
)

// spdyClient writes a client's SPDY frames by hand, header blocks included (spdystream's writer
// lowercases names and joins values, so it cannot write what a crafted client can).
type spdyClient struct {
	out  bytes.Buffer
	zbuf bytes.Buffer
	z    *zlib.Writer
}

func newSPDYClient(t testing.TB) *spdyClient {
	c := &spdyClient{}
	z, err := zlib.NewWriterLevelDict(&c.zbuf, zlib.BestCompression, spdyHeaderDictionary)
	if err != nil {
		t.Fatal(err)
	}
	c.z = z
	return c
}

// block compresses a header block of name, value pairs, in order, as they are.
func (c *spdyClient) block(pairs ...string) []byte {
	var raw bytes.Buffer
	_ = binary.Write(&raw, binary.BigEndian, uint32(len(pairs)/2))
	for _, s := range pairs {
		_ = binary.Write(&raw, binary.BigEndian, uint32(len(s)))
		raw.WriteString(s)
	}
	c.zbuf.Reset()
	_, _ = c.z.Write(raw.Bytes())
	_ = c.z.Flush()
	return append([]byte(nil), c.zbuf.Bytes()...)
}

func (c *spdyClient) control(typ spdy.ControlFrameType, flags byte, payload []byte) *spdyClient {
	_ = binary.Write(&c.out, binary.BigEndian, uint16(0x8003))
	_ = binary.Write(&c.out, binary.BigEndian, uint16(typ))
	_ = binary.Write(&c.out, binary.BigEndian, uint32(flags)<<24|uint32(len(payload)))
	c.out.Write(payload)
	return c
}

// syn opens stream id with a header block of pairs.
func (c *spdyClient) syn(id uint32, flags byte, pairs ...string) *spdyClient {
	p := binary.BigEndian.AppendUint32(nil, id)
	p = append(p, 0, 0, 0, 0, 0, 0)
	return c.control(spdy.TypeSynStream, flags, append(p, c.block(pairs...)...))
}

func (c *spdyClient) data(id uint32, fin bool, payload string) *spdyClient {
	_ = binary.Write(&c.out, binary.BigEndian, id)
	flags := uint32(0)
	if fin {
		flags = 1
	}
	_ = binary.Write(&c.out, binary.BigEndian, flags<<24|uint32(len(payload)))
	c.out.WriteString(payload)
	return c
}

func (c *spdyClient) bytes() []byte { return c.out.Bytes() }

// The client's SPDY streams are read as spdystream and the kubelet read them: the stream type is
// http.Header's Get of the header block spdystream parsed (values split at NULs, the first
// occurrence first), and frames the kubelet would not read so are refused.
func TestSPDYStreamsAsTheKubeletReadsThem(t *testing.T) {
	cases := []struct {
		name    string
		frames  func(c *spdyClient)
		stdin   int64  // the stdin bytes read
		refused string // the protocol error, "" for none
	}{
		{"stdin", func(c *spdyClient) { c.syn(1, 0, "streamtype", "stdin").data(1, false, "typed") }, 5, ""},
		{"stdin NUL x is stdin", func(c *spdyClient) { c.syn(1, 0, "streamtype", "stdin\x00x").data(1, false, "typed") }, 5, ""},
		{"an empty value before the NUL", func(c *spdyClient) { c.syn(1, 0, "streamtype", "\x00stdin").data(1, false, "typed") }, 0, `type ""`},
		{"the first of two streamtype headers", func(c *spdyClient) {
			c.syn(1, 0, "streamtype", "stdin", "streamtype", "stdout").data(1, false, "typed")
		}, 5, ""},
		{"a name in upper case", func(c *spdyClient) { c.syn(1, 0, "StreamType", "stdin") }, 0, "not in lower case"},
		{"a header spdystream refuses", func(c *spdyClient) { c.syn(1, 0, "streamtype", "stdin", "connection", "x") }, 0, `header "Connection"`},
		{"an unknown stream type", func(c *spdyClient) { c.syn(1, 0, "streamtype", "bogus") }, 0, `type "bogus"`},
		{"two stdin streams", func(c *spdyClient) { c.syn(1, 0, "streamtype", "stdin").syn(3, 0, "streamtype", "stdin") }, 0, `type "stdin"`},
		{"a stream id reused", func(c *spdyClient) { c.syn(3, 0, "streamtype", "stdin").syn(1, 0, "streamtype", "stdout") }, 0, "after stream 3"},
		{"stream id 0", func(c *spdyClient) { c.syn(0, 0, "streamtype", "stdin") }, 0, "stream 0"},
		{"data after FIN", func(c *spdyClient) { c.syn(1, 0, "streamtype", "stdin").data(1, true, "ab").data(1, false, "cd") }, 2, "already ended"},
		{"data after a SYN_STREAM with FIN", func(c *spdyClient) { c.syn(1, 1, "streamtype", "stdin").data(1, false, "cd") }, 0, "already ended"},
		{"data after RST_STREAM", func(c *spdyClient) {
			c.syn(1, 0, "streamtype", "stdin").control(spdy.TypeRstStream, 0, []byte{0, 0, 0, 1, 0, 0, 0, 5}).data(1, false, "cd")
		}, 0, "never opened"},
		{"the client writes its stdout stream", func(c *spdyClient) { c.syn(1, 0, "streamtype", "stdout").data(1, false, "forged") }, 0, "stdout stream"},
		{"a PING longer than spdystream reads", func(c *spdyClient) { c.control(spdy.TypePing, 0, []byte{0, 0, 0, 1, 0, 0, 0, 0}) }, 0, "PING"},
		{"a control frame of an unknown type", func(c *spdyClient) { c.control(5, 0, nil) }, 0, "type 5"},
		{"a HEADERS frame", func(c *spdyClient) {
			c.syn(1, 0, "streamtype", "stdin").control(spdy.TypeHeaders, 0, append([]byte{0, 0, 0, 1}, c.block("a", "b")...))
		}, 0, "type 8"},
		{"nothing is read after GOAWAY", func(c *spdyClient) {
			c.syn(1, 0, "streamtype", "stdin").control(spdy.TypeGoAway, 0, make([]byte, 8)).data(1, false, "unseen")
		}, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newSPDYClient(t)
			tc.frames(c)
			o := &wiretest.Observer{}
			s := NewFrameReader("v4.channel.k8s.io", wire.Shape{}, o)
			wiretest.FeedSplit(s.FromClient, c.bytes(), 5)
			if refused := o.Refused(); (tc.refused == "") != (refused == "") || !strings.Contains(refused, tc.refused) {
				t.Errorf("protocol error %q, want %q", refused, tc.refused)
			}
			got, _, _ := o.Result()
			if got["stdin"] != tc.stdin || len(got) > 1 {
				t.Errorf("bytes %v, want stdin %d", got, tc.stdin)
			}
		})
	}
}

// The kubelet reads the streams a request asked for: a stream it would not take (never replied
// to, it stops spdystream's frame queue) is refused.
func TestSPDYStreamsTheRequestAskedFor(t *testing.T) {
	shape := wire.Shape{Known: true, Stdout: true, Stderr: true}
	for _, tc := range []struct {
		name, protocol, typ string
		shape               wire.Shape
		ok                  bool
	}{
		{"stdout", "v4.channel.k8s.io", "stdout", shape, true},
		{"stdin not asked for", "v4.channel.k8s.io", "stdin", shape, false},
		{"stdin asked for", "v4.channel.k8s.io", "stdin", wire.Shape{Known: true, Stdin: true}, true},
		{"resize without a TTY", "v4.channel.k8s.io", "resize", shape, false},
		{"resize with a TTY", "v4.channel.k8s.io", "resize", wire.Shape{Known: true, TTY: true}, true},
		{"resize in v2", "v2.channel.k8s.io", "resize", wire.Shape{Known: true, TTY: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newSPDYClient(t).syn(1, 0, "streamtype", tc.typ)
			o := &wiretest.Observer{}
			s := NewFrameReader(tc.protocol, tc.shape, o)
			s.FromClient(c.bytes())
			if refused := o.Refused(); (refused == "") != tc.ok {
				t.Errorf("protocol error %q, want one: %t", refused, !tc.ok)
			}
		})
	}
}

// Port-forward: the kubelet takes each stream's port header, not the query. The ports streams
// opened are what the record names; a stream to a port the request did not name is refused.
func TestSPDYPortForwardPorts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		query   []int32
		port    string
		ports   []int32
		refused string
	}{
		{"a port the query named", []int32{80}, "80", []int32{80}, ""},
		{"leading zeros, as strconv.ParseUint reads them", []int32{80}, "0080", []int32{80}, ""},
		{"the port header NUL another", []int32{80}, "80\x0022", []int32{80}, ""},
		{"a port the query did not name", []int32{80}, "22", nil, "port 22, which the request did not name"},
		{"no ports in the query: any", nil, "22", []int32{22}, ""},
		{"not a port", nil, "http", nil, `port "http"`},
		{"port 0", nil, "0", nil, `port "0"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newSPDYClient(t).syn(1, 0, "streamtype", "error", "port", tc.port, "requestid", "0").
				syn(3, 0, "streamtype", "data", "port", tc.port, "requestid", "0").data(3, false, "GET / HTTP/1.0\r\n\r\n")
			o := &wiretest.Observer{}
			s := NewFrameReader("", wire.Shape{Known: true, PortForward: true, Ports: tc.query}, o)
			s.FromClient(c.bytes())
			if refused := o.Refused(); (tc.refused == "") != (refused == "") || !strings.Contains(refused, tc.refused) {
				t.Errorf("protocol error %q, want %q", refused, tc.refused)
			}
			if got := o.ForwardedPorts(); !reflect.DeepEqual(got, tc.ports) {
				t.Errorf("ports %v, want %v", got, tc.ports)
			}
		})
	}
}

// A resize stream is read as the kubelet's json.Decoder reads it, however frames cut it, and no
// more of it is kept than a terminal size needs: a value that outgrows that, or what is not
// terminal sizes, is refused (it was kept whole, up to 16 MiB a frame, for the session's life).
func TestSPDYResizeStream(t *testing.T) {
	for _, tc := range []struct {
		name    string
		frames  []string
		resizes int
		refused string
	}{
		{"two in one frame", []string{`{"Width":80,"Height":24}{"Width":90,"Height":24}`}, 2, ""},
		{"one across two frames", []string{`{"Width":80,`, ` "Height":24}`}, 1, ""},
		{"not JSON", []string{`{"Width":80,"Height":24}`, `oops`}, 1, "not terminal sizes"},
		{"too wide", []string{`{"Width":70000,"Height":24}`}, 0, "not terminal sizes"},
		{"a huge value", []string{`{"Width":80,"Pad":"` + strings.Repeat("x", 1<<20)}, 0, "resize message of over"},
		{"whitespace is not kept", []string{`{"Width":80,"Height":24}` + strings.Repeat(" ", 1<<20), `{"Width":1,"Height":1}`}, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newSPDYClient(t).syn(1, 0, "streamtype", "resize")
			for _, f := range tc.frames {
				c.data(1, false, f)
			}
			o := &wiretest.Observer{}
			s := NewFrameReader("v4.channel.k8s.io", wire.Shape{}, o)
			wiretest.FeedSplit(s.FromClient, c.bytes(), 4096)
			if refused := o.Refused(); (tc.refused == "") != (refused == "") || !strings.Contains(refused, tc.refused) {
				t.Errorf("protocol error %q, want %q", refused, tc.refused)
			}
			if _, resizes, _ := o.Result(); resizes != tc.resizes {
				t.Errorf("%d resizes, want %d", resizes, tc.resizes)
			}
			if n := s.client.resize.Held(); n > 2*wire.MaxResizeValue {
				t.Errorf("%d bytes of the resize stream kept", n)
			}
		})
	}
}

// The ports a port-forward records are bounded as the query's are: streams to a 65th port are refused.
func TestSPDYPortForwardManyPorts(t *testing.T) {
	c := newSPDYClient(t)
	for i := range maxForwardedPorts + 1 {
		c.syn(uint32(2*i+1), 0, "streamtype", "data", "port", strconv.Itoa(1000+i), "requestid", strconv.Itoa(i))
	}
	o := &wiretest.Observer{}
	NewFrameReader("", wire.Shape{Known: true, PortForward: true}, o).FromClient(c.bytes())
	if refused := o.Refused(); !strings.Contains(refused, "over 64 ports") || len(o.ForwardedPorts()) != maxForwardedPorts {
		t.Errorf("protocol error %q, %d ports", refused, len(o.ForwardedPorts()))
	}
}
