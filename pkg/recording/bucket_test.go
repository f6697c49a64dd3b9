package recording

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/exec-proxy/exec-proxy/internal/poll"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

func TestRedact(t *testing.T) {
	cases := []struct{ url, want string }{
		{"s3://rec?endpoint=http://127.0.0.1:9000&region=x&use_path_style=true", "s3://rec"},
		{"s3://AKIA:secret@rec/x?region=x", "s3://rec/x"},
		{"azblob://rec?sas_token=sv%3D2020&x=1", "azblob://rec"},
		{"file:///var/lib/rec", "file:///var/lib/rec"},
		{"gs://rec#frag", "gs://rec"},
		{"s3://rec\x7f?secret=1", "(unparsable bucket URL)"},
	}
	for _, tc := range cases {
		if got := Redact(tc.url); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.url, got, tc.want)
		}
	}
}

// TestOpenBucketErrorsRedacted: an unknown driver's error repeats the URL; the error must not.
func TestOpenBucketErrorsRedacted(t *testing.T) {
	_, err := OpenBucket(context.Background(), "nosuch://u:pw@rec?key=sekrit", time.Second, testingclock.NewFakeClock(time.Now()))
	if err == nil || strings.Contains(err.Error(), "sekrit") || strings.Contains(err.Error(), "pw") {
		t.Fatalf("error %v", err)
	}
}

func fileBucket(t *testing.T, clk *testingclock.FakeClock) (*Bucket, string) {
	t.Helper()
	dir := t.TempDir()
	b, err := OpenBucket(context.Background(), "file://"+dir+"?no_tmp_dir=true", time.Second, clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, dir
}

// keys are the objects in a file bucket's directory: not their attributes, nor the temporary file
// fileblob writes an object to before it renames it into place (counting one let a test read an
// object not there yet).
func keys(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".attrs") && !strings.HasSuffix(p, ".tmp") {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUploadWhileRunning: parts are uploaded on the interval's tick and when PartBytes are
// waiting; what a part holds is whole events; at the end the whole recording replaces them, and
// the spool file goes.
func TestUploadWhileRunning(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	clk := testingclock.NewFakeClock(time.Now())
	b, bucketDir := fileBucket(t, clk)
	b.PartBytes = 4 << 10
	spool := t.TempDir()
	s := Session{ID: "s1", Kind: session.KindExec, Namespace: "a", Pod: "p", User: "alice", TTY: true}
	r, err := newWriter(Config{Dir: spool, Bucket: b}, s, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Add("r", []byte("80x24"))
	r.Add("o", []byte("hello\r\n"))
	poll.Until(t, func() bool { return r.up.flushed.Load() > 0 && clk.HasWaiters() })
	clk.Step(time.Second) // the interval
	poll.Until(t, func() bool { return len(keys(t, bucketDir)) == 1 })
	part0, err := b.b.ReadAll(context.Background(), partKey("s1", 0))
	if err != nil || !strings.HasSuffix(string(part0), "\"hello\\r\\n\"]\n") || !strings.HasPrefix(string(part0), "{") {
		t.Fatalf("part 0 %q, %v", part0, err)
	}
	// Past PartBytes: uploaded with no tick, a part per line (two lines do not fit one part).
	r.Add("o", []byte(strings.Repeat("x", 3<<10)))
	r.Add("o", []byte(strings.Repeat("y", 3<<10)))
	poll.Until(t, func() bool { return len(keys(t, bucketDir)) == 3 })
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := keys(t, bucketDir); len(got) != 1 || got[0] != "s1.cast" {
		t.Errorf("objects after the end: %v", got)
	}
	whole, _ := b.b.ReadAll(context.Background(), "s1.cast")
	rest := strings.TrimPrefix(string(whole), string(part0))
	if !strings.HasPrefix(string(whole), string(part0)) || !strings.Contains(rest, strings.Repeat("x", 3<<10)+"\"]\n[") {
		t.Errorf("the recording %q does not follow its parts", whole)
	}
	if _, err := os.Stat(r.path); !os.IsNotExist(err) {
		t.Errorf("spool file left: %v", err)
	}
	if want := "file://" + bucketDir + "/s1.cast"; r.Path() != want {
		t.Errorf("Path %q, want %q", r.Path(), want)
	}
}

// TestUploadLineLongerThanPart: an event's line longer than a part (a chunk of NULs is six times
// its size in JSON) is a part of its own, whole: a part never ends inside a line.
func TestUploadLineLongerThanPart(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	clk := testingclock.NewFakeClock(time.Now())
	b, bucketDir := fileBucket(t, clk)
	b.PartBytes = 4 << 10
	s := Session{ID: "s1", Kind: session.KindExec, Namespace: "a", Pod: "p", User: "alice"}
	r, err := newWriter(Config{Dir: t.TempDir(), Bucket: b}, s, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Add("r", []byte("80x24"))
	r.Add("i", make([]byte, 2<<10)) // 12 KiB of JSON: three parts' worth in one line
	r.Add("o", []byte("done\r\n"))
	// Past PartBytes, uploaded with no tick: the start's lines, then the long line (the old cut
	// made three parts of it).
	poll.Until(t, func() bool { return len(keys(t, bucketDir)) >= 2 })
	var parts []string
	for i := 0; ; i++ {
		part, err := b.b.ReadAll(context.Background(), partKey("s1", i))
		if err != nil {
			break
		}
		if !strings.HasSuffix(string(part), "\n") {
			t.Errorf("part %d ends inside a line: ...%q", i, part[max(0, len(part)-40):])
		}
		parts = append(parts, string(part))
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	whole, _ := b.b.ReadAll(context.Background(), "s1.cast")
	if got := strings.Join(parts, ""); !strings.HasPrefix(string(whole), got) {
		t.Errorf("the parts %q are not the recording's start %q", got, whole)
	}
}

// TestDiscardRemovesParts: a session that did not start leaves nothing in the bucket.
func TestDiscardRemovesParts(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Now())
	b, bucketDir := fileBucket(t, clk)
	r, err := newWriter(Config{Dir: t.TempDir(), Bucket: b}, Session{ID: "s2", Kind: session.KindExec}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Add("r", []byte("80x24"))
	poll.Until(t, func() bool { return r.up.flushed.Load() > 0 && clk.HasWaiters() })
	clk.Step(time.Second)
	poll.Until(t, func() bool { return len(keys(t, bucketDir)) == 1 })
	r.Discard()
	if got := keys(t, bucketDir); len(got) != 0 {
		t.Errorf("objects left: %v", got)
	}
}

// TestOpenFromParts: the parts of a recording whose replica stopped read as one asciicast,
// ending with the Incomplete marker at the last event's time; the whole recording wins over parts.
func TestOpenFromParts(t *testing.T) {
	b, _ := fileBucket(t, testingclock.NewFakeClock(time.Now()))
	ctx := context.Background()
	put := func(key, body string) {
		if err := b.b.WriteAll(ctx, key, []byte(body), nil); err != nil {
			t.Fatal(err)
		}
	}
	put(partKey("s1", 1), "[1.5,\"o\",\"b\"]\n")
	put(partKey("s1", 0), "{\"version\":2}\n[0.5,\"o\",\"a\"]\n")
	put(partKey("s1", 10), "[9,\"o\",\"after a gap\"]\n")
	put(partKey("s2", 0), "{\"version\":2}\n")
	put("s3/part-000000", "{}\n")
	put("s3.cast", "whole\n")
	cases := []struct{ id, want string }{
		{"s1", "{\"version\":2}\n[0.5,\"o\",\"a\"]\n[1.5,\"o\",\"b\"]\n[1.5,\"m\",\"" + Incomplete + "\"]\n"},
		{"s2", "{\"version\":2}\n[0,\"m\",\"" + Incomplete + "\"]\n"},
		{"s3", "whole\n"},
		{"s4", ""},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			rc, err := b.Open(ctx, tc.id)
			if tc.want == "" {
				if !errors.Is(err, ErrNotInBucket) {
					t.Fatalf("err %v, want ErrNotInBucket", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || string(got) != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestSweep: retention removes exec-proxy's own objects older than it, and a session's parts only
// all together, once the newest is that old; other keys (a shared bucket) stay, whatever their age.
// A second sweep, as another replica's, finds nothing to do and fails on nothing.
func TestSweep(t *testing.T) {
	b, dir := fileBucket(t, testingclock.NewFakeClock(time.Now()))
	ctx := context.Background()
	now := time.Now()
	cases := []struct {
		key     string
		age     time.Duration
		removed bool
	}{
		{"old.cast", 48 * time.Hour, true},
		{"new.cast", time.Hour, false},
		{"running/part-000000", 48 * time.Hour, false}, // its header: the session still uploads
		{"running/part-000001", time.Hour, false},
		{"dead/part-000000", 48 * time.Hour, true},
		{"dead/part-000001", 30 * time.Hour, true},
		{"dead/notes", 48 * time.Hour, false},
		{".exec-proxy-check-0123456789abcdef", 48 * time.Hour, true},
		{".exec-proxy-check-x", 48 * time.Hour, false},
		{"other-app/data.csv", 48 * time.Hour, false},
		{"notes.txt", 48 * time.Hour, false},
		{"old.cast.bak", 48 * time.Hour, false},
		{"a.b.cast", 48 * time.Hour, false},
	}
	want := 0
	for _, tc := range cases {
		if err := b.b.WriteAll(ctx, tc.key, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(dir, tc.key), now.Add(-tc.age), now.Add(-tc.age)); err != nil {
			t.Fatal(err)
		}
		if tc.removed {
			want++
		}
	}
	for i, want := range []int{want, 0} {
		removed, err := b.Sweep(ctx, 24*time.Hour, now)
		if err != nil || removed != want {
			t.Errorf("sweep %d: removed %d, %v; want %d", i, removed, err, want)
		}
	}
	for _, tc := range cases {
		_, err := os.Stat(filepath.Join(dir, tc.key))
		if gone := os.IsNotExist(err); gone != tc.removed {
			t.Errorf("%s (age %s): removed %v, want %v", tc.key, tc.age, gone, tc.removed)
		}
	}
}

func TestPartNumber(t *testing.T) {
	cases := []struct {
		key  string
		n    int
		mine bool
	}{
		{"s1/part-000000", 0, true},
		{"s1/part-000042", 42, true},
		{"s1/part-1000000", 1000000, true},
		{"s1/part-+00001", 0, false},
		{"s1/part-01", 0, false},
		{"s1/part-000001.tmp", 0, false},
		{"s2/part-000001", 0, false},
		{"s1/sub/part-000001", 0, false},
	}
	for _, tc := range cases {
		n, ok := partNumber("s1", tc.key)
		if n != tc.n || ok != tc.mine {
			t.Errorf("partNumber(s1, %q) = %d, %v; want %d, %v", tc.key, n, ok, tc.n, tc.mine)
		}
	}
}

// TestUploadTimeout: an upload's time grows with the object, so a large recording can go up.
func TestUploadTimeout(t *testing.T) {
	cases := []struct {
		size int64
		want time.Duration
	}{
		{0, time.Minute},
		{1, time.Minute + 2*time.Second},
		{1 << 20, time.Minute + 2*time.Second},
		{1<<20 + 1, time.Minute + 4*time.Second},
		{1 << 30, time.Minute + 2048*time.Second},
	}
	for _, tc := range cases {
		if got := uploadTimeout(tc.size); got != tc.want {
			t.Errorf("uploadTimeout(%d) = %s, want %s", tc.size, got, tc.want)
		}
	}
}

// TestPutWaitsForSlotWithContext: with every upload slot taken, an upload gives up when its
// context is done rather than queueing behind the others for good.
func TestPutWaitsForSlotWithContext(t *testing.T) {
	b, _ := fileBucket(t, testingclock.NewFakeClock(time.Now()))
	for i := 0; i < maxUploads; i++ {
		b.slots <- struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.put(ctx, "part", "s1/part-000000", strings.NewReader("x"), 1) }()
	cancel()
	var err error
	poll.Until(t, func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("put with every slot taken and its context done: %v, want context.Canceled", err)
	}
}

// TestEndDoesNotWaitForSlowBucket: a session's end waits for its whole recording's upload no
// longer than that upload's timeout, here with every upload slot taken by others. Close then says
// so (ErrUploadUnfinished) and names the spool file, where the recording is; the upload goes on
// and, once a slot frees, puts the recording in the bucket and removes the spool file, or, with
// none for another timeout, gives up and leaves the file in the spool.
func TestEndDoesNotWaitForSlowBucket(t *testing.T) {
	cases := []struct {
		name     string
		freed    bool // a slot frees after the end
		inBucket bool
	}{
		{"a slot frees after the end", true, true},
		{"no slot frees", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			clk := testingclock.NewFakeClock(time.Now())
			b, bucketDir := fileBucket(t, clk)
			for i := 0; i < maxUploads; i++ {
				b.slots <- struct{}{}
			}
			r, err := newWriter(Config{Dir: t.TempDir(), Bucket: b}, Session{ID: "slow", Kind: session.KindExec}, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Add("r", []byte("80x24"))
			r.Add("o", []byte("hello"))
			closed := make(chan error, 1)
			go func() { closed <- r.Close() }()
			// The uploader's ticker, the final upload's slot wait, and Close's wait.
			poll.Until(t, func() bool { return clk.Waiters() == 3 })
			clk.Step(uploadTimeoutFloor + uploadTimeoutPerMiB)
			var cerr error
			poll.Until(t, func() bool {
				select {
				case cerr = <-closed:
					return true
				default:
					return false
				}
			})
			if !errors.Is(cerr, ErrUploadUnfinished) || r.Path() != r.path {
				t.Fatalf("Close: %v, Path %q; want ErrUploadUnfinished and the spool file %q", cerr, r.Path(), r.path)
			}
			if tc.freed {
				<-b.slots
			} else {
				clk.Step(uploadTimeoutFloor + uploadTimeoutPerMiB)
			}
			poll.Until(t, func() bool {
				select {
				case <-r.up.done:
					return true
				default:
					return false
				}
			})
			_, serr := os.Stat(r.path)
			if got := keys(t, bucketDir); (len(got) == 1 && got[0] == "slow.cast") != tc.inBucket || os.IsNotExist(serr) != tc.inBucket {
				t.Errorf("objects %v, spool file: %v; want the recording in the bucket %v", got, serr, tc.inBucket)
			}
			if want := map[bool]string{true: b.Location("slow"), false: r.path}[tc.inBucket]; r.Path() != want {
				t.Errorf("Path %q, want %q", r.Path(), want)
			}
		})
	}
}
