package recording

import (
	"context"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
	"k8s.io/utils/clock"

	"github.com/exec-proxy/exec-proxy/internal/poll"
	"github.com/exec-proxy/exec-proxy/pkg/recording/recordingtest"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// TestS3WrongCredentials: the start's check names the server's refusal; under fail-closed, a
// session whose parts cannot be uploaded is ended (onFail) with it.
func TestS3WrongCredentials(t *testing.T) {
	s3 := recordingtest.StartS3(t)
	s3.Credentials(t, true)
	b, err := OpenBucket(context.Background(), s3.URL(""), 20*time.Millisecond, clock.RealClock{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Errorf("check: %v, want SignatureDoesNotMatch", err)
	}
	failed := make(chan error, 1)
	s := Session{ID: "refused", Kind: session.KindExec, Namespace: "a", TTY: true}
	cfg := Config{Dir: t.TempDir(), Bucket: b, FailClosed: true}
	r, err := New(cfg, s, false, func(err error) { failed <- err })
	if err != nil {
		t.Fatal(err)
	}
	r.Add("r", []byte("80x24"))
	if err := <-failed; !strings.Contains(err.Error(), "SignatureDoesNotMatch") || !strings.Contains(err.Error(), "refused/part-000000") {
		t.Errorf("onFail: %v", err)
	}
	if err := r.Close(); err == nil {
		t.Error("Close: the recording's upload failed, and Close says nothing")
	}
	if spool := Path(cfg.Dir, s.ID); r.Path() != spool {
		t.Errorf("Path %q after the failed upload, want the spool file %q", r.Path(), spool)
	}
}

// TestS3Sweep: retention on a real S3 server removes what is older than it by the server's
// LastModified, keeps what is newer, and a second sweep (another replica's) has nothing to do.
func TestS3Sweep(t *testing.T) {
	s3 := recordingtest.StartS3(t)
	s3.Credentials(t, false)
	ctx := context.Background()
	b, err := OpenBucket(ctx, s3.URL(""), time.Second, clock.RealClock{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Check(ctx); err != nil {
		t.Fatal(err)
	}
	put := func(key string) time.Time {
		if err := b.b.WriteAll(ctx, key, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		obj, err := b.b.List(&blob.ListOptions{Prefix: key}).Next(ctx) // the time Sweep sees
		if err != nil {
			t.Fatal(err)
		}
		return obj.ModTime
	}
	old := put("old.cast")
	poll.Until(t, func() bool { return put("new.cast").After(old) }) // LastModified's resolution
	for i, want := range []int{1, 0} {
		removed, err := b.Sweep(ctx, time.Hour, old.Add(time.Hour+time.Nanosecond))
		if err != nil || removed != want {
			t.Errorf("sweep %d: removed %d, %v; want %d", i, removed, err, want)
		}
	}
	var left []string
	it := b.b.List(&blob.ListOptions{})
	for obj, err := it.Next(ctx); err == nil; obj, err = it.Next(ctx) {
		left = append(left, obj.Key)
	}
	if len(left) != 1 || left[0] != "new.cast" {
		t.Errorf("left %v, want new.cast", left)
	}
}
