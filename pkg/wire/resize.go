package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"k8s.io/client-go/tools/remotecommand"
)

// MaxResizeValue bounds the part of a resize stream kept while a JSON value is incomplete: a
// terminal size is about 30 bytes ({"Width":80,"Height":24}). Each byte fed decodes what is kept
// again, so the bound is also what a byte of the stream costs at most.
const MaxResizeValue = 256

// ResizeReader reads a resize stream as the kubelet (and the stream translator) does: one JSON
// decoder over the stream's bytes, however the frames cut them, decoding TerminalSize values until
// the first error, after which nothing more is read. A stream that is not that is a client protocol
// error: the kubelet would stop reading it (and, over SPDY, every stream queued behind it).
type ResizeReader struct {
	buf []byte // the incomplete value at the stream's end, at most MaxResizeValue bytes
}

// Feed reads more of the stream; it returns the sizes completed, or an error when the stream is
// not terminal sizes or a value outgrows MaxResizeValue.
func (r *ResizeReader) Feed(p []byte, sized func(remotecommand.TerminalSize)) error {
	for len(p) > 0 {
		n := min(len(p), MaxResizeValue+1-len(r.buf))
		r.buf = append(r.buf, p[:n]...)
		p = p[n:]
		if err := r.decode(sized); err != nil {
			return err
		}
		if len(r.buf) > MaxResizeValue {
			return fmt.Errorf("a resize message of over %d bytes", MaxResizeValue)
		}
	}
	return nil
}

func (r *ResizeReader) decode(sized func(remotecommand.TerminalSize)) error {
	dec := json.NewDecoder(bytes.NewReader(r.buf))
	for {
		var size remotecommand.TerminalSize
		err := dec.Decode(&size)
		if err == nil { // a bare number at the end, which could go on, is a type error either way
			sized(size)
			continue
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			// Keep what is not yet a whole value, without the whitespace before it.
			rest := bytes.TrimLeft(r.buf[dec.InputOffset():], " \t\r\n")
			r.buf = append(r.buf[:0], rest...)
			return nil
		}
		return fmt.Errorf("a resize stream that is not terminal sizes: %w", err)
	}
}

// Held is the capacity kept for an incomplete value.
func (r *ResizeReader) Held() int { return cap(r.buf) }
