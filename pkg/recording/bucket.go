package recording

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:///dir
	_ "gocloud.dev/blob/s3blob"   // s3://bucket?endpoint=...&region=...
	"gocloud.dev/gcerrors"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// A recording's objects in a bucket: <id>/part-NNNNNN while the session runs, <id>.cast once it
// ended (the parts are then removed).
const (
	castSuffix = ".cast"
	// DefaultPartBytes is a part's byte bound: a part is uploaded when this much is recorded, even
	// before the upload interval.
	DefaultPartBytes = 256 << 10
	// An upload may take uploadTimeoutFloor and uploadTimeoutPerMiB for each MiB of the object: a
	// store must take at least 512 KiB/s per upload, whatever the recording's size.
	uploadTimeoutFloor  = time.Minute
	uploadTimeoutPerMiB = 2 * time.Second
	// uploadBuffer is the S3 driver's multipart part size (S3's least); one upload at a time per
	// object, and at most maxUploads objects at once in the process, bound the memory uploads take.
	uploadBuffer = 5 << 20
	maxUploads   = 4
)

// uploadTimeout bounds the upload of an object of size bytes, and a removal (size 0).
func uploadTimeout(size int64) time.Duration {
	return uploadTimeoutFloor + time.Duration((size+1<<20-1)>>20)*uploadTimeoutPerMiB
}

// The keys exec-proxy writes, and the only ones retention removes: a bucket may be shared.
var (
	sessionID = regexp.MustCompile(`^[a-zA-Z0-9-]{1,64}$`) // an audit ID; nothing else names a key
	castKey   = regexp.MustCompile(`^[a-zA-Z0-9-]{1,64}\.cast$`)
	checkKey  = regexp.MustCompile(`^\.exec-proxy-check-[0-9a-f]{16}$`)
	partName  = regexp.MustCompile(`^part-[0-9]{6,}$`)
)

// ValidSessionID says whether id looks like a session id: only such an id becomes a key.
func ValidSessionID(id string) bool { return sessionID.MatchString(id) }

// Bucket keeps recordings in object storage through gocloud.dev/blob: uploaded in parts while
// the session runs, whole when it ends.
type Bucket struct {
	b      *blob.Bucket
	where  string // the URL without credentials or query: what logs say
	prefix string // the URL's prefix parameter, which the bucket puts before each key
	// Interval is the longest a part waits for its upload; PartBytes uploads it earlier.
	Interval  time.Duration
	PartBytes int
	clock     clock.WithTickerAndDelayedExecution
	slots     chan struct{} // one per upload under way: bounds their memory
}

// OpenBucket opens a gocloud.dev/blob URL (s3://, file://); credentials come from the driver's
// environment (AWS_ACCESS_KEY_ID, ...). Its errors never hold the URL: it may carry secrets.
func OpenBucket(ctx context.Context, rawURL string, interval time.Duration, clk clock.WithTickerAndDelayedExecution) (*Bucket, error) {
	b, err := blob.OpenBucket(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("opening recording bucket %s: %w", Redact(rawURL), redactErr(err, rawURL))
	}
	prefix := ""
	if u, err := url.Parse(rawURL); err == nil {
		prefix = u.Query().Get("prefix")
	}
	return &Bucket{b: b, where: Redact(rawURL), prefix: prefix, Interval: interval, PartBytes: DefaultPartBytes, clock: clk,
		slots: make(chan struct{}, maxUploads)}, nil
}

// Check writes, reads and removes an object, as recording does: wrong credentials or a missing
// bucket fail here, with the driver's words.
func (b *Bucket) Check(ctx context.Context) error {
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	key := ".exec-proxy-check-" + hex.EncodeToString(nonce[:]) // replicas check at once
	const body = "exec-proxy can write here\n"
	if err := b.put(ctx, "check", key, strings.NewReader(body), int64(len(body))); err != nil {
		return err
	}
	if _, err := b.b.ReadAll(ctx, key); err != nil {
		return fmt.Errorf("reading %s from %s: %w", key, b.where, err)
	}
	return b.remove(ctx, key)
}

// Close closes the bucket.
func (b *Bucket) Close() error { return b.b.Close() }

// String is the bucket's URL without userinfo or query: safe to log.
func (b *Bucket) String() string { return b.where }

// Location names session id's recording in the bucket, for audit records: s3://bucket/prefix/id.cast.
func (b *Bucket) Location(id string) string {
	return strings.TrimSuffix(b.where, "/") + "/" + b.prefix + id + castSuffix
}

// Redact drops what a bucket URL may carry of secrets: its userinfo and its query (some drivers
// take keys or SAS tokens there). What cannot be parsed is withheld whole.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable bucket URL)"
	}
	u.User, u.RawQuery, u.Fragment, u.RawFragment = nil, "", "", ""
	return u.String()
}

// redactErr keeps err's message free of the URL's query, which some drivers repeat.
func redactErr(err error, rawURL string) error {
	u, perr := url.Parse(rawURL)
	if perr != nil || (u.RawQuery == "" && u.User == nil) {
		return err
	}
	msg := err.Error()
	for _, secret := range []string{rawURL, u.RawQuery, u.User.String()} {
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "REDACTED")
		}
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

func partKey(id string, n int) string { return fmt.Sprintf("%s/part-%06d", id, n) }

// partNumber is the number of session id's part key; ok is false for a key exec-proxy did not
// make.
func partNumber(id, key string) (n int, ok bool) {
	name, found := strings.CutPrefix(key, id+"/")
	if !found || !partName.MatchString(name) {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(name, "part-"))
	return n, err == nil
}

// put writes one object of size bytes, counting it as what. It waits for an upload slot until ctx
// is done; the upload is bounded by ctx and by uploadTimeout(size).
func (b *Bucket) put(ctx context.Context, what, key string, body io.Reader, size int64) error {
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("uploading %s to %s: waiting for one of the %d upload slots: %w", key, b.where, maxUploads, ctx.Err())
	}
	defer func() { <-b.slots }()
	ctx, cancel := context.WithTimeout(ctx, uploadTimeout(size))
	defer cancel()
	start := b.clock.Now()
	w, err := b.b.NewWriter(ctx, key, &blob.WriterOptions{ContentType: castMIME, BufferSize: uploadBuffer, MaxConcurrency: 1})
	if err == nil {
		_, err = io.Copy(w, body)
		if cerr := w.Close(); err == nil {
			err = cerr
		} else {
			cancel() // abandons the upload
		}
	}
	observeUpload(what, err, b.clock.Since(start))
	if err != nil {
		return fmt.Errorf("uploading %s to %s: %w", key, b.where, err)
	}
	return nil
}

// castMIME is a recording's content type.
const castMIME = "application/x-asciicast"

// removeParts removes parts 0..n-1 of session id; one already gone is no error.
func (b *Bucket) removeParts(ctx context.Context, id string, n int) error {
	for i := 0; i < n; i++ {
		if err := b.remove(ctx, partKey(id, i)); err != nil {
			return err
		}
	}
	return nil
}

func (b *Bucket) remove(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, uploadTimeout(0))
	defer cancel()
	if err := b.b.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("removing %s from %s: %w", key, b.where, err)
	}
	return nil
}

// Sweep removes exec-proxy's objects older than maxAge (by their ModTime) at now, under the
// prefix: the recordings (<id>.cast), the start check's leftovers, and a session's parts once its
// newest part is that old (the parts are one unit: the first holds the header, and a running
// session uploads one at least every interval in which it recorded anything). Keys exec-proxy does
// not make are left alone: the bucket may be shared. Replicas may sweep at once: an object another
// removed first is no error.
func (b *Bucket) Sweep(ctx context.Context, maxAge time.Duration, now time.Time) (removed int, err error) {
	cutoff := now.Add(-maxAge)
	it := b.b.List(&blob.ListOptions{Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return removed, nil
		}
		if err != nil {
			return removed, fmt.Errorf("listing %s: %w", b.where, err)
		}
		var stale []string
		switch id := strings.TrimSuffix(obj.Key, "/"); {
		case obj.IsDir && ValidSessionID(id):
			if stale, err = b.staleParts(ctx, id, cutoff); err != nil {
				return removed, err
			}
		case !obj.IsDir && (castKey.MatchString(obj.Key) || checkKey.MatchString(obj.Key)) && obj.ModTime.Before(cutoff):
			stale = []string{obj.Key}
		}
		for _, key := range stale {
			if err := b.remove(ctx, key); err != nil {
				return removed, err
			}
			removed++
			retentionRemoved.Inc()
		}
	}
}

// staleParts is every part of session id when its newest part is older than cutoff; none otherwise.
func (b *Bucket) staleParts(ctx context.Context, id string, cutoff time.Time) ([]string, error) {
	var keys []string
	it := b.b.List(&blob.ListOptions{Prefix: id + "/part-"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return keys, nil
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s's parts in %s: %w", id, b.where, err)
		}
		if _, ok := partNumber(id, obj.Key); !ok {
			continue
		}
		if !obj.ModTime.Before(cutoff) {
			return nil, nil // the session may still run
		}
		keys = append(keys, obj.Key)
	}
}

// Retain removes, every sweepEvery(maxAge) until ctx is done, the objects older than maxAge.
func (b *Bucket) Retain(ctx context.Context, maxAge time.Duration) {
	logger := klog.FromContext(ctx)
	t := b.clock.NewTicker(sweepEvery(maxAge))
	defer t.Stop()
	for {
		removed, err := b.Sweep(ctx, maxAge, b.clock.Now())
		if err != nil {
			logger.Error(err, "Recording retention: the sweep stopped; it runs again at the next period", "removed", removed)
		} else if removed > 0 {
			logger.Info("Recording retention: removed objects older than the retention", "removed", removed, "retention", maxAge)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// sweepEvery is how often retention sweeps: a tenth of it, between a minute and an hour, so an
// object outlives the retention by at most that much.
func sweepEvery(maxAge time.Duration) time.Duration {
	return min(max(maxAge/10, time.Minute), time.Hour)
}
