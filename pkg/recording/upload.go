package recording

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"k8s.io/klog/v2"
)

// uploader copies one recording's spool file to the bucket while the session runs: what the
// writer has flushed, in parts, at least every Interval and whenever PartBytes are waiting; and
// the whole file as <id>.cast once the writer is done, then removes the parts. It reads the file,
// never the writer's queue: a slow or failing bucket makes the file wait, not the session.
type uploader struct {
	b      *Bucket
	id     string
	path   string
	onFail func(error) // fail-closed: a part that cannot be uploaded ends the session

	flushed atomic.Int64  // bytes of whole events in the file (the writer's flush)
	kicked  int64         // flushed at the last kick; the writer's goroutine's own
	kick    chan struct{} // PartBytes are waiting
	discard atomic.Bool   // the session did not start: remove the parts, upload nothing

	// The uploader's goroutine's own, until done is closed.
	sent   int64 // bytes of the file uploaded in parts
	parts  int
	failed bool // onFail was called
	err    error
	done   chan struct{}
}

func newUploader(b *Bucket, id, path string, onFail func(error)) *uploader {
	return &uploader{b: b, id: id, path: path, onFail: onFail, kick: make(chan struct{}, 1), done: make(chan struct{})}
}

// wrote tells the uploader the file now holds n bytes of whole events.
func (u *uploader) wrote(n int64) {
	u.flushed.Store(n)
	if n-u.kicked >= int64(u.b.PartBytes) {
		u.kicked = n
		select {
		case u.kick <- struct{}{}:
		default:
		}
	}
}

// run uploads parts until fileDone is closed, then the whole recording.
func (u *uploader) run(fileDone <-chan struct{}) {
	defer close(u.done)
	ctx := context.Background()
	t := u.b.clock.NewTicker(u.b.Interval)
	defer t.Stop()
	for {
		select {
		case <-fileDone:
			u.err = u.finish(ctx)
			return
		case <-t.C():
		case <-u.kick:
		}
		if err := u.uploadParts(ctx); err != nil {
			klog.Background().Error(err, "Recording part not uploaded; it is tried again at the next interval", "session", u.id)
			if u.onFail != nil && !u.failed {
				u.failed = true
				u.onFail(err)
			}
		}
	}
}

// uploadParts uploads what the file holds beyond the parts already uploaded, a part of at most
// PartBytes at a time, each ending with an event's line.
func (u *uploader) uploadParts(ctx context.Context) error {
	for avail := u.flushed.Load() - u.sent; avail > 0; avail = u.flushed.Load() - u.sent {
		buf := make([]byte, min(avail, int64(u.b.PartBytes)))
		if err := u.readAt(buf, u.sent); err != nil {
			return err
		}
		n := bytes.LastIndexByte(buf, '\n') + 1
		if n == 0 { // a line longer than a part: cannot be, an event is at most recordingChunk
			n = len(buf)
		}
		if err := u.b.put(ctx, "part", partKey(u.id, u.parts), bytes.NewReader(buf[:n])); err != nil {
			return err
		}
		u.sent += int64(n)
		u.parts++
	}
	return nil
}

func (u *uploader) readAt(buf []byte, off int64) error {
	f, err := os.Open(u.path)
	if err != nil {
		return fmt.Errorf("reading recording %s to upload it: %w", u.path, err)
	}
	defer f.Close()
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return fmt.Errorf("reading recording %s to upload it: %w", u.path, err)
	}
	return nil
}

// finish uploads the whole file as <id>.cast and removes the parts; a discarded recording's
// parts are only removed.
func (u *uploader) finish(ctx context.Context) error {
	if !u.discard.Load() {
		f, err := os.Open(u.path)
		if err != nil {
			return fmt.Errorf("reading recording %s to upload it: %w", u.path, err)
		}
		err = u.b.put(ctx, "recording", u.id+castSuffix, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return u.b.removeParts(ctx, u.id, u.parts)
}

// wait waits for the whole recording's upload.
func (u *uploader) wait() error {
	<-u.done
	return u.err
}
