package awsstore

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// maxEmptyReads bounds how often a reader may return (0, nil) in a row while
// the body checks that it has ended (io.ReadFull uses no such bound; bufio
// uses 100 too).
const maxEmptyReads = 100

// errBodyStopped is what a read after the request finished gets: the SDK or
// net/http may still hold the body in a goroutine.
var errBodyStopped = errors.New("body read after the request finished")

// errBodyTooLong marks a reader that yields more than the size given.
var errBodyTooLong = errors.New("reader yields more bytes than the size given")

// s3BodyError is a failure of the body itself (the source failed, had the
// wrong length, or did not match the digest). It tells the SDK's retryer not
// to retry: the body is a one-pass stream, a retry could not rewind it.
type s3BodyError struct{ err error }

func (e *s3BodyError) Error() string        { return e.err.Error() }
func (e *s3BodyError) Unwrap() error        { return e.err }
func (e *s3BodyError) RetryableError() bool { return false }

// s3Body is the request body of a PutObject or UploadPart. It passes exactly
// size bytes from r, hashing them when a digest is expected, and checks
// before handing over the final bytes that r has ended and that the digest
// matches: on any failure it returns an error instead of those bytes, so the
// server never receives a complete body and stores nothing, whether or not it
// verifies anything itself. A cancelled ctx counts as a failure: net/http
// notices cancellation only between writes, and could otherwise send a whole
// body (and S3 store it) while the call reports context.Canceled.
//
// net/http reads the body from one goroutine at a time, but may still do so
// after the call returned (http.RoundTripper allows it); stop marks the end
// of the call, after which reads fail without touching r. At most one read of
// r that was already under way can finish after stop.
type s3Body struct {
	ctx       context.Context
	r         io.Reader
	size      int64
	remaining int64 // touched only by the reading goroutine
	want      digest.Digest
	h         hash.Hash // nil when no digest is expected

	mu      sync.Mutex
	err     error // first failure, sticky
	done    bool  // all bytes handed over and verified
	stopped bool
}

func newS3Body(ctx context.Context, r io.Reader, size int64, want digest.Digest) *s3Body {
	b := &s3Body{ctx: ctx, r: r, size: size, remaining: size, want: want}
	if want != "" {
		b.h = want.Algorithm().Hash()
	}
	return b
}

// Read implements io.Reader.
func (b *s3Body) Read(p []byte) (int, error) {
	b.mu.Lock()
	switch {
	case b.err != nil:
		err := b.err
		b.mu.Unlock()
		return 0, err
	case b.stopped:
		b.mu.Unlock()
		return 0, &s3BodyError{errBodyStopped}
	case b.done:
		b.mu.Unlock()
		return 0, io.EOF
	}
	b.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}

	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, rerr := b.r.Read(p)
	if n > 0 {
		if b.h != nil {
			b.h.Write(p[:n])
		}
		b.remaining -= int64(n)
	}
	var err error
	switch {
	case b.ctx.Err() != nil:
		err = &s3BodyError{fmt.Errorf("sending body: %w", b.ctx.Err())}
	case b.remaining == 0:
		err = b.finish(rerr)
	case errors.Is(rerr, io.EOF):
		err = &s3BodyError{fmt.Errorf("reader ended after %d of %d bytes: %w", b.size-b.remaining, b.size, io.ErrUnexpectedEOF)}
	case rerr != nil:
		err = &s3BodyError{fmt.Errorf("reading body: %w", rerr)}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return 0, &s3BodyError{errBodyStopped}
	}
	if err != nil {
		// Withhold these bytes: for the final ones that is the point.
		b.err = err
		return 0, err
	}
	if b.remaining == 0 {
		b.done = true
	}
	return n, nil
}

// finish runs once all size bytes are read, before the last of them are
// handed over: r must have ended (rerr is the error that came with the last
// bytes), the digest must match and ctx must still be live. It returns an
// *s3BodyError or nil.
func (b *s3Body) finish(rerr error) error {
	if rerr == nil {
		// r has not said it ended: probe for one more byte.
		var one [1]byte
		for i := 0; ; i++ {
			var n int
			n, rerr = b.r.Read(one[:])
			if n > 0 {
				return &s3BodyError{fmt.Errorf("%w (%d)", errBodyTooLong, b.size)}
			}
			if rerr != nil {
				break
			}
			if i >= maxEmptyReads {
				return &s3BodyError{fmt.Errorf("reading body: %w", io.ErrNoProgress)}
			}
		}
	}
	if !errors.Is(rerr, io.EOF) {
		return &s3BodyError{fmt.Errorf("reading body: %w", rerr)}
	}
	if b.h != nil {
		if got := digest.NewDigest(b.want.Algorithm(), b.h); got != b.want {
			return &s3BodyError{fmt.Errorf("%w: got %s, want %s", storage.ErrDigestMismatch, got, b.want)}
		}
	}
	if err := b.ctx.Err(); err != nil {
		return &s3BodyError{fmt.Errorf("sending body: %w", err)}
	}
	return nil
}

// stop ends the body's use by the request and returns its failure, if any.
func (b *s3Body) stop() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = true
	return b.err
}
