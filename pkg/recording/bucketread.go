package recording

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// ErrNotInBucket: the bucket has no recording of the session.
var ErrNotInBucket = errors.New("recording not in the bucket")

// Incomplete is the marker ending a recording read from its parts. It says only what the bucket
// shows: the whole recording is not there. The session may still run (its replica could not be
// asked), its replica may have stopped, or the whole recording's upload failed or is under way.
const Incomplete = "exec-proxy: the uploaded parts end here; the rest was not uploaded (the session may still run, or its replica stopped)"

// Open reads session id's recording from the bucket: the whole <id>.cast, or, without it, its
// parts in order followed by an Incomplete marker (an asciicast "m" event, which players show as
// a marker). The id must be a valid session id: it becomes the keys.
func (b *Bucket) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	r, err := b.b.NewReader(ctx, id+castSuffix, nil)
	if err == nil {
		return r, nil
	}
	if gcerrors.Code(err) != gcerrors.NotFound {
		return nil, fmt.Errorf("reading %s from %s: %w", id+castSuffix, b.where, err)
	}
	parts, err := b.partKeys(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, ErrNotInBucket
	}
	last, err := b.b.ReadAll(ctx, parts[len(parts)-1]) // at most PartBytes
	if err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", parts[len(parts)-1], b.where, err)
	}
	marker, err := json.Marshal([]interface{}{lastTime(last), "m", Incomplete})
	if err != nil {
		return nil, err
	}
	return &partsReader{ctx: ctx, b: b, keys: parts[:len(parts)-1],
		tail: io.MultiReader(bytes.NewReader(last), bytes.NewReader(append(marker, '\n')))}, nil
}

// partKeys lists session id's parts in their order.
func (b *Bucket) partKeys(ctx context.Context, id string) ([]string, error) {
	type part struct {
		key string
		n   int
	}
	var parts []part
	it := b.b.List(&blob.ListOptions{Prefix: id + "/part-"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s's parts in %s: %w", id, b.where, err)
		}
		n, ok := partNumber(id, obj.Key)
		if !ok {
			continue // not one exec-proxy wrote
		}
		parts = append(parts, part{obj.Key, n})
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].n < parts[j].n })
	keys := make([]string, 0, len(parts))
	for i, p := range parts {
		if p.n != i { // a part missing (removed while listed): what follows would not be the recording
			break
		}
		keys = append(keys, p.key)
	}
	return keys, nil
}

// lastTime is the time of the last event in a part (whole lines): where the marker goes.
func lastTime(part []byte) float64 {
	lines := bytes.Split(bytes.TrimRight(part, "\n"), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		var ev []json.RawMessage
		if json.Unmarshal(lines[i], &ev) != nil || len(ev) == 0 {
			continue // the header
		}
		if t, err := strconv.ParseFloat(string(ev[0]), 64); err == nil {
			return t
		}
	}
	return 0
}

// partsReader reads parts one after the other, then tail.
type partsReader struct {
	ctx  context.Context
	b    *Bucket
	keys []string
	cur  *blob.Reader
	tail io.Reader
}

func (p *partsReader) Read(buf []byte) (int, error) {
	for {
		if p.cur == nil {
			if len(p.keys) == 0 {
				return p.tail.Read(buf)
			}
			r, err := p.b.b.NewReader(p.ctx, p.keys[0], nil)
			if err != nil {
				return 0, fmt.Errorf("reading %s from %s: %w", p.keys[0], p.b.where, err)
			}
			p.cur, p.keys = r, p.keys[1:]
		}
		n, err := p.cur.Read(buf)
		if err == io.EOF {
			p.cur.Close()
			p.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (p *partsReader) Close() error {
	if p.cur != nil {
		return p.cur.Close()
	}
	return nil
}
