package wire

// Pending is what a reader is still to be handed of a byte stream some frames are taken out of
// (written elsewhere directly): the start of a frame read to decide on it, the rest of that frame
// as it comes, then the error that ended the stream.
type Pending struct {
	Owed []byte
	Body uint64
	Err  error
}

// Read hands p what is owed, or the next bytes of the frame passed on, read with src; served is
// false when the next frame is to be read.
func (q *Pending) Read(p []byte, src func([]byte) (int, error)) (n int, served bool, err error) {
	switch {
	case len(q.Owed) > 0:
		n = copy(p, q.Owed)
		q.Owed = q.Owed[n:]
		return n, true, nil
	case q.Err != nil:
		return 0, true, q.Err
	case q.Body > 0:
		n, err = src(p[:min(uint64(len(p)), q.Body)])
		q.Body -= uint64(n)
		return n, true, err
	}
	return 0, false, nil
}
