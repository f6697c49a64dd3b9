package recording

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"k8s.io/klog/v2"
)

// uploader copies one recording's spool file to the bucket while the session runs: what the
// writer has flushed, in parts, at least every Interval and whenever PartBytes are waiting; and
// the whole file as <id>.cast once the writer is done, then removes the parts and the spool file.
// It reads the file, never the writer's queue: a slow or failing bucket makes the file wait, not
// the session.
type uploader struct {
	b      *Bucket
	id     string
	path   string
	onFail func(error) // fail-closed: a part that cannot be uploaded ends the session

	flushed   atomic.Int64  // bytes of whole events in the file (the writer's flush)
	kicked    int64         // flushed at the last kick; the writer's goroutine's own
	kick      chan struct{} // PartBytes are waiting
	discarded atomic.Bool   // the session did not start: remove the parts, upload nothing
	inBucket  atomic.Bool   // the whole recording is in the bucket

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

// discard makes the uploader remove the parts and upload nothing: the session did not start.
func (u *uploader) discard() { u.discarded.Store(true) }

// location is where the recording is: its object once the bucket has it whole, else the spool file.
func (u *uploader) location() string {
	if u.inBucket.Load() {
		return u.b.Location(u.id)
	}
	return u.path
}

// run uploads parts until fileDone is closed, then the whole recording.
func (u *uploader) run(fileDone <-chan struct{}) {
	defer close(u.done)
	// A part waits for an upload slot, and uploads, until the session ends: the whole recording
	// then replaces it, and must not queue behind it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-fileDone:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := u.b.clock.NewTicker(u.b.Interval)
	defer t.Stop()
	for {
		select {
		case <-fileDone:
			u.err = u.finish()
			return
		case <-t.C():
		case <-u.kick:
		}
		if err := u.uploadParts(ctx); err != nil && ctx.Err() == nil {
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
		if n == 0 && avail > int64(len(buf)) {
			// A line longer than a part (a chunk of NUL bytes is six times its size in JSON): the
			// part is that line, whole, as every part is whole lines.
			buf = make([]byte, min(avail, maxLine))
			if err := u.readAt(buf, u.sent); err != nil {
				return err
			}
			n = bytes.IndexByte(buf, '\n') + 1
		}
		if n == 0 { // flushed ends with an event's line: cannot be
			n = len(buf)
		}
		if err := u.b.put(ctx, "part", partKey(u.id, u.parts), bytes.NewReader(buf[:n]), int64(n)); err != nil {
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

// finish uploads the whole file as <id>.cast, then removes the parts and the spool file; a
// discarded recording's parts are only removed. The upload waits for a slot at most twice the
// time it may itself take: the session's end waits for the first (wait), the second goes on after it.
func (u *uploader) finish() error {
	// parts+1: a part the session's end cut short may have reached the bucket.
	parts := u.parts + 1
	if u.discarded.Load() {
		return u.b.removeParts(context.Background(), u.id, parts)
	}
	f, err := os.Open(u.path)
	if err != nil {
		return fmt.Errorf("reading recording %s to upload it: %w", u.path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading recording %s to upload it: %w", u.path, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slotWait := u.b.clock.AfterFunc(2*uploadTimeout(info.Size()), cancel)
	defer slotWait.Stop()
	if err := u.b.put(ctx, "recording", u.id+castSuffix, f, info.Size()); err != nil {
		return err
	}
	u.inBucket.Store(true)
	if err := os.Remove(u.path); err != nil && !os.IsNotExist(err) {
		klog.Background().Error(err, "Removing a recording's spool file", "session", u.id)
	}
	return u.b.removeParts(context.Background(), u.id, parts)
}

// ErrUploadUnfinished: a session's end did not wait for its whole recording's upload, which goes
// on in the background.
var ErrUploadUnfinished = errors.New("the recording's upload did not finish")

// wait waits for the whole recording's upload, no longer than the upload of the spool file may
// take: a slow bucket never holds the session's end longer. Past that the upload goes on, and its
// outcome is logged.
func (u *uploader) wait() error {
	bound := uploadTimeoutFloor
	if info, err := os.Stat(u.path); err == nil {
		bound = uploadTimeout(info.Size())
	}
	t := u.b.clock.NewTimer(bound)
	defer t.Stop()
	select {
	case <-u.done:
		return u.err
	case <-t.C():
	}
	go func() {
		<-u.done
		if u.err != nil {
			klog.Background().Error(u.err, "Recording not uploaded whole after its session ended; the file stays in the spool", "session", u.id, "file", u.path)
			return
		}
		klog.Background().Info("Recording uploaded after its session ended", "session", u.id, "object", u.b.Location(u.id))
	}()
	return fmt.Errorf("%w within %s, so the session's end did not wait for it: it goes on, and the file stays in the spool until the bucket has it (%s)",
		ErrUploadUnfinished, bound, u.b.Location(u.id))
}
