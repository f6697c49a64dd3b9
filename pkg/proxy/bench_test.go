package proxy

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/moby/spdystream/spdy"

	"github.com/exec-proxy/exec-proxy/pkg/proxy/streamstats"
	"github.com/exec-proxy/exec-proxy/pkg/wire"
)

// The relay's own costs per byte, without TLS or sockets: the frame readers every session's bytes
// pass through (the adaptive copy's is in package clientconn). make microbench runs these and
// compares them with benchstat to the baseline in bench/micro-base.txt; the end-to-end figures
// are make bench's.

// spdyDownload is a SPDY exec session's server frames: stdout DATA frames of size bytes each, after
// the client's SYN_STREAMs (returned separately, fed first).
func spdyDownload(b *testing.B, size int) (fromClient, frame []byte) {
	var c, s bytes.Buffer
	cf, _ := spdy.NewFramer(&c, nil)
	sf, _ := spdy.NewFramer(&s, nil)
	for _, st := range []struct {
		id  spdy.StreamId
		typ string
	}{{1, "error"}, {5, "stdout"}} { // ids rise, as spdystream has them
		if err := cf.WriteFrame(&spdy.SynStreamFrame{StreamId: st.id, Headers: http.Header{"Streamtype": {st.typ}}}); err != nil {
			b.Fatal(err)
		}
	}
	if err := sf.WriteFrame(&spdy.DataFrame{StreamId: 5, Data: bytes.Repeat([]byte("y\n"), size/2)}); err != nil {
		b.Fatal(err)
	}
	return c.Bytes(), s.Bytes()
}

func BenchmarkSPDYFrameReaderStdout(b *testing.B) {
	for _, size := range []int{1 << 10, 32 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			fromClient, frame := spdyDownload(b, size)
			s := streamstats.New(streamstats.Hooks{}).NewFrameReader("SPDY/3.1", "v4.channel.k8s.io", wire.Shape{})
			s.FromClient(fromClient)
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				s.ToClient(frame)
			}
		})
	}
}

func BenchmarkWSFrameReaderStdout(b *testing.B) {
	for _, size := range []int{1 << 10, 32 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			frame := wsFrame(true, 2, channelMsg(1, string(bytes.Repeat([]byte("y\n"), size/2))), nil)
			s := streamstats.New(streamstats.Hooks{}).NewFrameReader("websocket", "v5.channel.k8s.io", wire.Shape{})
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				s.ToClient(frame)
			}
		})
	}
}

// BenchmarkWSFrameReaderStdoutRecorded is a recorded session's: the reader hands every byte of
// stdout to the recording (here one that discards it).
func BenchmarkWSFrameReaderStdoutRecorded(b *testing.B) {
	frame := wsFrame(true, 2, channelMsg(1, string(bytes.Repeat([]byte("y\n"), 16<<10))), nil)
	stats := streamstats.New(streamstats.Hooks{})
	stats.StartRecording(discardSink{})
	s := stats.NewFrameReader("websocket", "v5.channel.k8s.io", wire.Shape{})
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		s.ToClient(frame)
	}
}

// BenchmarkSPDYFrameReaderStdoutRecorded is the same over SPDY.
func BenchmarkSPDYFrameReaderStdoutRecorded(b *testing.B) {
	fromClient, frame := spdyDownload(b, 32<<10)
	stats := streamstats.New(streamstats.Hooks{})
	stats.StartRecording(discardSink{})
	s := stats.NewFrameReader("SPDY/3.1", "v4.channel.k8s.io", wire.Shape{})
	s.FromClient(fromClient)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		s.ToClient(frame)
	}
}

// discardSink is a recording that keeps nothing.
type discardSink struct{}

func (discardSink) Add(string, []byte) {}
func (discardSink) Stdin() bool        { return true }
func (discardSink) Path() string       { return "" }
func (discardSink) Dropped() int64     { return 0 }
func (discardSink) Close() error       { return nil }
func (discardSink) Discard()           {}

func byteSize(n int) string { return fmt.Sprintf("%dKiB", n>>10) }
