package websocket

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/exec-proxy/exec-proxy/pkg/wire"
)

func TestWSFrameCutter(t *testing.T) {
	mask := []byte{1, 2, 3, 4}
	cases := []struct {
		name   string
		frame  []byte
		pieces []int // cut points: each piece must end on a boundary only at the frame's end
	}{
		{"a short frame", wsFrame(true, 2, []byte("\x01hello"), nil), []int{1, 3}},
		{"a 16-bit length", wsFrame(true, 2, bytes.Repeat([]byte{'x'}, 32<<10+1), nil), []int{2, 3, 4096}},
		{"a 64-bit length", wsFrame(true, 2, bytes.Repeat([]byte{'x'}, 70<<10), nil), []int{5, 10, 11}},
		{"a masked frame", wsFrame(true, 2, []byte("\x00typed"), mask), []int{2, 5, 6}},
		{"a frame without payload", wsFrame(true, 9, nil, nil), []int{1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c FrameCutter
			from := 0
			for _, to := range append(tc.pieces, len(tc.frame)) {
				whole := c.Follow(tc.frame[from:to])
				if whole != (to == len(tc.frame)) {
					t.Fatalf("after %d of %d bytes: on a boundary %v", to, len(tc.frame), whole)
				}
				from = to
			}
			if !c.Follow(wsFrame(true, 10, nil, nil)) {
				t.Error("the next frame, whole, did not end on a boundary")
			}
		})
	}
}

// The translator's frames and the direct ones are channel messages as x/net/websocket frames them.
func TestChannelFrame(t *testing.T) {
	// The last: the most payload the translator's connection to the kubelet writes directly in one frame.
	for _, n := range []int{0, 1, 124, 125, 126, 0xfffe, 0xffff, wire.FrameBufferSize - MaxHeader - 1} {
		b := make([]byte, MaxHeader+1+n)
		payload := bytes.Repeat([]byte("z"), n)
		copy(b[MaxHeader+1:], payload)
		if got, want := ChannelFrame(b, 2, n), wsFrame(true, 2, append([]byte{2}, payload...), nil); !bytes.Equal(got, want) {
			t.Errorf("%d bytes: header % x, want % x", n, got[:min(len(got), 12)], want[:min(len(want), 12)])
		}
	}
}

func TestUnmask(t *testing.T) {
	key := [4]byte{0xa1, 0xb2, 0xc3, 0xd4}
	for _, n := range []int{0, 1, 7, 8, 9, 31, 1000} {
		for pos := range 5 {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(rand.IntN(256))
			}
			want := append([]byte(nil), p...)
			for i := range want {
				want[i] ^= key[(pos+i)%4]
			}
			Unmask(p, key, pos)
			if !bytes.Equal(p, want) {
				t.Errorf("%d bytes from position %d: unmasked wrong", n, pos)
			}
		}
	}
}
