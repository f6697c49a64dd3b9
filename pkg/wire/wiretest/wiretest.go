// Package wiretest helps test the wire protocols' readers and writers and their callers: an
// Observer that keeps what it hears, builders of frames, and TLS connections over loopback.
package wiretest

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/remotecommand"
	certutil "k8s.io/client-go/util/cert"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
)

// Observer is a wire.Observer that keeps what it hears. Its zero value takes no stream's bytes.
type Observer struct {
	// Record: the observer takes the bytes of stdin, stdout and stderr (Data), as a session's
	// recording with stdin does.
	Record bool

	mu      sync.Mutex
	bytes   map[string]int64
	data    map[string][]byte
	resizes int
	ports   map[uint16]bool
	exit    wire.ExitStatus
	refused string // the last client protocol error
}

var _ wire.Observer = (*Observer)(nil)

// Payload counts n bytes of stream's payload, as a session does (none for an empty stream).
func (o *Observer) Payload(stream string, n int) {
	if stream == "" || n == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.bytes == nil {
		o.bytes = map[string]int64{}
	}
	o.bytes[stream] += int64(n)
}

func (o *Observer) Wants(stream string) bool {
	return o.Record && (stream == "stdin" || stream == "stdout" || stream == "stderr")
}

func (o *Observer) Data(stream string, p []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.data == nil {
		o.data = map[string][]byte{}
	}
	o.data[stream] = append(o.data[stream], p...)
}

func (o *Observer) Resized(sizes []remotecommand.TerminalSize) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.resizes += len(sizes)
}

func (o *Observer) Status(msg []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.exit.Read(msg)
}

func (o *Observer) PortForwarded(port uint16) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ports == nil {
		o.ports = map[uint16]bool{}
	}
	o.ports[port] = true
}

func (o *Observer) Lost(why string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.exit.Unknown(why)
}

func (o *Observer) ClientProtocolError(why string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.exit.Unknown(why)
	o.refused = why
}

// Result is bytes per stream, resizes, and the exit code or "unknown: <why>", as a session has
// them.
func (o *Observer) Result() (map[string]int64, int, string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	bytes := map[string]int64{}
	for k, v := range o.bytes {
		bytes[k] = v
	}
	return bytes, o.resizes, o.exit.Code()
}

// Recorded is the bytes of stream that Data was given.
func (o *Observer) Recorded(stream string) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.data[stream]
}

// Refused is the last client protocol error, or "".
func (o *Observer) Refused() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refused
}

// ForwardedPorts lists the ports a port-forward opened streams for.
func (o *Observer) ForwardedPorts() []int32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []int32
	for p := range o.ports {
		out = append(out, int32(p))
	}
	slices.Sort(out)
	return out
}

// KubeletResizes counts the terminal sizes the kubelet's handleResizeEvents reads of a stream.
func KubeletResizes(stream []byte) int {
	dec := json.NewDecoder(bytes.NewReader(stream))
	n := 0
	for {
		var size remotecommand.TerminalSize
		if dec.Decode(&size) != nil {
			return n
		}
		n++
	}
}

// FeedSplit feeds p in pieces of n bytes (all at once for n <= 0).
func FeedSplit(feed func([]byte), p []byte, n int) {
	if n <= 0 {
		n = len(p)
	}
	for len(p) > 0 {
		k := min(n, len(p))
		feed(append([]byte(nil), p[:k]...)) // the relay reuses its buffer
		p = p[k:]
	}
}

// WSFrame builds one WebSocket frame; a mask of 4 bytes masks it, as clients must.
func WSFrame(fin bool, opcode byte, payload, mask []byte) []byte {
	var b bytes.Buffer
	first := opcode
	if fin {
		first |= 0x80
	}
	b.WriteByte(first)
	maskBit := byte(0)
	if mask != nil {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b.WriteByte(maskBit | byte(n))
	case n < 1<<16:
		b.WriteByte(maskBit | 126)
		_ = binary.Write(&b, binary.BigEndian, uint16(n))
	default:
		b.WriteByte(maskBit | 127)
		_ = binary.Write(&b, binary.BigEndian, uint64(n))
	}
	if mask == nil {
		b.Write(payload)
		return b.Bytes()
	}
	b.Write(mask)
	for i, c := range payload {
		b.WriteByte(c ^ mask[i%4])
	}
	return b.Bytes()
}

// ChannelMsg is a channel protocol message: the channel, then data.
func ChannelMsg(ch byte, data string) []byte { return append([]byte{ch}, data...) }

// BatchedClient is a TLS client whose records, after the handshake, reach the network only on
// Flush, in one write.
type BatchedClient struct {
	TLS *tls.Conn
	raw *batchConn
}

func (b *BatchedClient) Flush(t *testing.T) {
	t.Helper()
	if err := b.raw.flush(); err != nil {
		t.Fatal(err)
	}
}

type batchConn struct {
	net.Conn
	mu      sync.Mutex
	holding bool
	held    bytes.Buffer
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holding {
		return c.held.Write(p)
	}
	return c.Conn.Write(p)
}

func (c *batchConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// tls.Conn.CloseWrite leaves a write deadline of now behind, for its own write only.
	if err := c.Conn.SetWriteDeadline(time.Time{}); err != nil {
		return err
	}
	_, err := c.Conn.Write(c.held.Bytes())
	c.held.Reset()
	return err
}

// TLSPair is a TLS connection over loopback TCP, handshake done; the client's records, from then
// on, reach the network only on Flush.
func TLSPair(t *testing.T) (*tls.Conn, *BatchedClient) {
	t.Helper()
	bc := &batchConn{}
	server, client := HandshakenPair(t, func(raw net.Conn) net.Conn { bc.Conn = raw; return bc })
	bc.mu.Lock()
	bc.holding = true
	bc.mu.Unlock()
	return server, &BatchedClient{TLS: client, raw: bc}
}

// HandshakenPair is a TLS connection over loopback TCP, handshake done; the client's TLS runs over
// what wrap makes of its TCP connection.
func HandshakenPair(t *testing.T, wrap func(net.Conn) net.Conn) (server, client *tls.Conn) {
	t.Helper()
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("localhost", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = tls.Server(<-accepted, &tls.Config{Certificates: []tls.Certificate{cert}})
	client = tls.Client(wrap(raw), &tls.Config{InsecureSkipVerify: true}) // a test's own pair
	t.Cleanup(func() { _ = server.Close(); _ = raw.Close() })
	errs := make(chan error, 1)
	go func() { errs <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	return server, client
}

// ReadSide is what a session's client frames carried, as one side reads them.
type ReadSide struct {
	Stdin   []byte
	Data    int64 // port-forward
	Resizes int
	Ports   []int32
}

// ClientRead is what r, reporting to o (which records), read of the client's bytes data fed in
// pieces of split bytes; refused when it refused them.
func ClientRead(t testing.TB, r wire.FrameReader, o *Observer, data []byte, split int) (out ReadSide, refused bool) {
	FeedSplit(r.FromClient, data, split)
	r.Close()
	out.Stdin = o.Recorded("stdin")
	bytes, resizes, _ := o.Result()
	if int64(len(out.Stdin)) != bytes["stdin"] {
		t.Fatalf("stdin: %d bytes counted, %d recorded", bytes["stdin"], len(out.Stdin))
	}
	out.Data, out.Resizes, out.Ports = bytes["data"], resizes, o.ForwardedPorts()
	return out, o.Refused() != ""
}

// StreamBytes is the payload of stream counted so far.
func (o *Observer) StreamBytes(stream string) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bytes[stream]
}

// ExitUnknown says why the exit code cannot be known; the first reason wins.
func (o *Observer) ExitUnknown(why string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.exit.Unknown(why)
}
