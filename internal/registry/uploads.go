package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// The upload protocol (distribution-spec "Pushing blobs"), written once for
// every backend:
//
//   - A session stores its offset, the serialized SHA-256 and SHA-512 states
//     and its multipart parts; the bytes are never re-read to hash them.
//   - A writing request first claims the session with a conditional write
//     (offset must match, no live claim), so concurrent writers at the same
//     offset get 416 and never touch its parts.
//   - Bytes are cut into parts of partSize; a remainder below minPartSize is
//     kept as tail segments in the blob store until a later chunk completes
//     a part (S3 parts must be at least 5 MiB but for the last).
//   - The session is checkpointed after each part, so a broken stream can
//     resume from the last acknowledged offset.
//   - Commit verifies the digest from the saved state and completes the
//     multipart object in place: no copy, whatever the blob size.

// RangeError is a write at an offset the session is not at: 416 with the
// session's Range and Location, so the client can resume.
type RangeError struct {
	Upload storage.Upload
	Err    *oci.Error
}

func (e *RangeError) Error() string { return e.Err.Error() }
func (e *RangeError) Unwrap() error { return e.Err }

func rangeError(u storage.Upload, format string, args ...any) error {
	return &RangeError{Upload: u, Err: oci.Errorf(oci.CodeBlobUploadInvalid, format, args...).WithStatus(http.StatusRequestedRangeNotSatisfiable)}
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

func unknownUpload(id, why string) error {
	return oci.Errorf(oci.CodeBlobUploadUnknown, "upload session %s %s", id, why)
}

// StartUpload opens an upload session in repo. It writes nothing: see
// sessions.go.
func (r *Registry) StartUpload(ctx context.Context, repo string) (storage.Upload, error) {
	return r.newSession(repo, ""), nil
}

// StartUploadFor opens an upload session of repo whose client will commit
// it with a digest of alg (POST ?digest-algorithm=): it hashes that and
// sha256 only, however long it gets.
func (r *Registry) StartUploadFor(ctx context.Context, repo string, alg digest.Algorithm) (storage.Upload, error) {
	if !SupportedAlgorithm(alg) {
		return storage.Upload{}, oci.Errorf(oci.CodeDigestInvalid, "digest-algorithm %s is not supported; use sha256 or sha512", quoteAlg(alg))
	}
	return r.newSession(repo, alg), nil
}

func quoteAlg(alg digest.Algorithm) string { return fmt.Sprintf("%q", alg) }

// UploadStatus returns session id of repo. An id issued for another
// repository is unknown here: no request reaches outside its repository.
func (r *Registry) UploadStatus(ctx context.Context, repo, id string) (storage.Upload, error) {
	lazy, ok := r.parseSession(repo, id)
	if !ok {
		return storage.Upload{}, unknownUpload(id, "was not issued for repository "+repo)
	}
	u, err := r.meta.GetUpload(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		u = lazy // nothing written yet
	case err != nil:
		return u, fmt.Errorf("get upload session %s: %w", id, err)
	case u.Done:
		return storage.Upload{}, unknownUpload(id, "has ended (finished or cancelled)")
	case u.Repo != repo:
		return storage.Upload{}, unknownUpload(id, "does not belong to repository "+repo)
	}
	u.DigestAlgorithm = lazy.DigestAlgorithm // from the id
	if r.opts.now().After(u.Expires) {
		return storage.Upload{}, unknownUpload(id, "has expired")
	}
	return u, nil
}

// CancelUpload ends session id and discards its bytes.
func (r *Registry) CancelUpload(ctx context.Context, repo, id string) error {
	u, err := r.UploadStatus(ctx, repo, id)
	if err != nil {
		return err
	}
	if r.claimLive(u) {
		// A request is writing (or committing) it: cancelling now could
		// delete bytes that request is about to make a blob of.
		return rangeError(u, "another request is writing to upload session %s; cancel it when that request has ended", id)
	}
	if err := r.end(ctx, u); err != nil {
		if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrExists) {
			return rangeError(u, "upload session %s changed while it was being cancelled; retry", id)
		}
		return err
	}
	r.discardBytes(ctx, u)
	return nil
}

// end marks session u finished with a tombstone, kept until it expires:
// deleting the item would make its id look like a fresh lazy session.
func (r *Registry) end(ctx context.Context, u storage.Upload) error {
	t := storage.Upload{ID: u.ID, Repo: u.Repo, Key: u.Key, Done: true, Started: u.Started, Expires: u.Expires, Digest: u.Digest}
	var err error
	if u.Version == 0 {
		t.Version = 1
		err = r.meta.CreateUpload(ctx, t)
	} else {
		t.Version = u.Version + 1
		err = r.meta.UpdateUpload(ctx, t, u.Version)
	}
	if err != nil {
		return fmt.Errorf("end upload session %s: %w", u.ID, err)
	}
	return nil
}

// discard ends the session first (no one can write to it after), then
// deletes its scratch bytes; a crash in between leaves only garbage that
// the bucket lifecycle expires.
func (r *Registry) discard(ctx context.Context, u storage.Upload) {
	ctx, cancel := detached(ctx)
	defer cancel()
	if err := r.end(ctx, u); err != nil {
		r.opts.log.WarnContext(ctx, "end upload session", "upload", u.ID, "error", err.Error())
		return
	}
	r.discardBytes(ctx, u)
}

func (r *Registry) discardBytes(ctx context.Context, u storage.Upload) {
	if u.Assembled {
		if err := r.blobs.Delete(ctx, u.Key); err != nil {
			r.opts.log.WarnContext(ctx, "delete direct upload", "upload", u.ID, "error", err.Error())
		}
		return
	}
	if u.MultipartID != "" {
		if err := r.blobs.AbortMultipart(ctx, u.Key, u.MultipartID); err != nil {
			r.opts.log.WarnContext(ctx, "abort multipart upload", "upload", u.ID, "error", err.Error())
		}
	}
	r.deleteSegments(ctx, u.Tail)
}

func (r *Registry) deleteSegments(ctx context.Context, segs []storage.Segment) {
	for _, s := range segs {
		if err := r.blobs.Delete(ctx, s.Key); err != nil {
			r.opts.log.WarnContext(ctx, "delete upload segment", "key", s.Key, "error", err.Error())
		}
	}
}

// WriteUpload appends body to session id (PATCH). start is the
// Content-Range start, or -1 to append wherever the session stands.
func (r *Registry) WriteUpload(ctx context.Context, repo, id string, start int64, body io.Reader) (storage.Upload, error) {
	w, err := r.claim(ctx, repo, id, start)
	if err != nil {
		return storage.Upload{}, err
	}
	if err := w.append(ctx, body, false); err != nil {
		w.abandon(ctx)
		return storage.Upload{}, err
	}
	if err := w.release(ctx); err != nil {
		return storage.Upload{}, err
	}
	return w.u, nil
}

// CommitUpload ends session id (PUT ?digest=): it appends the optional
// body, checks that everything uploaded hashes to d, stores the blob and
// links it into repo. size is the body's length, -1 when unknown.
func (r *Registry) CommitUpload(ctx context.Context, repo, id string, d digest.Digest, start, size int64, body io.Reader) (storage.Blob, error) {
	// A whole blob in one request on a session nothing was written to
	// (POST, then PUT with the body): end the session first with a
	// conditional create of its tombstone, which fails if any request
	// wrote to or ended it before, then write the blob to its content key,
	// then link it. Three requests, and the session is spent for every
	// later request whatever happens next: a crash or a failed write
	// leaves a finished session and, at worst, an unlinked object.
	if start <= 0 && size >= 0 && size <= r.opts.maxSinglePut {
		lazy, ok := r.parseSession(repo, id)
		if !ok {
			return storage.Blob{}, unknownUpload(id, "was not issued for repository "+repo)
		}
		if r.opts.now().After(lazy.Expires) {
			return storage.Blob{}, unknownUpload(id, "has expired")
		}
		err := r.end(ctx, lazy)
		switch {
		case err == nil:
			return r.PutBlob(ctx, repo, d, size, body)
		case !errors.Is(err, storage.ErrExists):
			return storage.Blob{}, err
		}
		// The session has an item: a chunked upload, or one that ended.
	}
	u, err := r.UploadStatus(ctx, repo, id)
	if err != nil {
		return storage.Blob{}, err
	}
	if err := sessionKind(u, false); err != nil {
		return storage.Blob{}, err
	}
	if start >= 0 && start != u.Offset {
		return storage.Blob{}, rangeError(u, "chunk starts at %d but the upload has %d bytes", start, u.Offset)
	}
	// The rest of a session that has bytes already, or a body too large
	// (or of unknown size) for one verified write: stream it into parts.
	if u.Offset == 0 && size >= 0 && size <= r.opts.maxSinglePut && !r.claimLive(u) {
		// A session that was written to but holds no bytes yet.
		b, err := r.PutBlob(ctx, repo, d, size, body)
		if err != nil {
			if isClientError(err) {
				r.discard(ctx, u)
			}
			return b, err
		}
		if err := r.end(ctx, u); err != nil {
			r.opts.log.WarnContext(ctx, "end finished upload session", "upload", u.ID, "error", err.Error())
		}
		return b, nil
	}
	w, err := r.claim(ctx, repo, id, start)
	if err != nil {
		return storage.Blob{}, err
	}
	if err := w.append(ctx, body, true); err != nil {
		w.abandon(ctx)
		return storage.Blob{}, err
	}
	b, err := w.complete(ctx, d)
	if err != nil && !isClientError(err) {
		w.abandon(ctx) // keep the session resumable after an internal failure
	}
	return b, err
}

func isClientError(err error) bool {
	var oe *oci.Error
	return errors.As(err, &oe)
}

// sessionKind refuses a request of one kind of upload (direct, or the
// spec's) on a session of the other.
func sessionKind(u storage.Upload, direct bool) error {
	switch {
	case u.DirectSize > 0 && !direct:
		return oci.Errorf(oci.CodeBlobUploadInvalid, "upload session %s is a direct upload: PUT its parts to their URLs, then complete it with PUT ?skiff-direct=complete", u.ID)
	case u.DirectSize == 0 && direct:
		return oci.Errorf(oci.CodeBlobUploadInvalid, "upload session %s is not a direct upload: open one with POST ?skiff-direct=SIZE", u.ID)
	}
	return nil
}

// claimLive reports whether another request holds u. With an exclusive
// store, a claim left by an earlier process (one killed mid-request) is
// stale at once, so its client can resume right after a restart.
func (r *Registry) claimLive(u storage.Upload) bool {
	if u.Claim == "" || !r.opts.now().Before(u.ClaimUntil) {
		return false
	}
	return !r.opts.exclusive || strings.HasPrefix(u.Claim, r.instance)
}

// writer is one request's claim on an upload session.
type writer struct {
	r       *Registry
	u       storage.Upload
	hs      hashers
	garbage []storage.Segment // consumed segments, deleted after a checkpoint
	saved   int               // parts in the last saved state
}

// claim takes session id for one writing request: a conditional write that
// fails for everyone but one of several concurrent writers.
func (r *Registry) claim(ctx context.Context, repo, id string, start int64) (*writer, error) {
	return r.claimFor(ctx, repo, id, start, false)
}

// claimFor is claim for a direct upload (direct set) or one of the spec's:
// neither kind of request writes to the other kind of session.
func (r *Registry) claimFor(ctx context.Context, repo, id string, start int64, direct bool) (*writer, error) {
	u, err := r.UploadStatus(ctx, repo, id)
	if err != nil {
		return nil, err
	}
	if err := sessionKind(u, direct); err != nil {
		return nil, err
	}
	if start >= 0 && start != u.Offset {
		return nil, rangeError(u, "chunk starts at %d but the upload has %d bytes; send the next chunk from %d", start, u.Offset, u.Offset)
	}
	now := r.opts.now().UTC()
	if r.claimLive(u) {
		return nil, rangeError(u, "another request is writing to upload session %s", id)
	}
	hs, err := restoreHashers(u.HashState, u.DigestAlgorithm, u.Offset)
	if err != nil {
		return nil, err
	}
	prev := u.Version
	u.Version++
	u.Claim = r.instance + newID()[:12]
	u.ClaimUntil = now.Add(r.opts.claimLease)
	// Expires stays start + TTL: the bucket's lifecycle rules (abort
	// incomplete multipart uploads, expire uploads/ scratch) count from the
	// start too, so a session never outlives its bytes.
	if prev == 0 {
		err = r.meta.CreateUpload(ctx, u) // the first write creates the item
	} else {
		err = r.meta.UpdateUpload(ctx, u, prev)
	}
	if err != nil {
		if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrExists) {
			return nil, rangeError(u, "another request wrote to upload session %s first", id)
		}
		// The claim may be stored all the same (a write cut off by the
		// client's cancellation): end it, or the client's retry would wait
		// out the lease.
		u.Version = prev
		(&writer{r: r, u: u}).abandon(ctx)
		return nil, fmt.Errorf("claim upload session %s: %w", id, err)
	}
	return &writer{r: r, u: u, hs: hs, saved: len(u.Parts)}, nil
}

func (w *writer) tailSize() int64 {
	var n int64
	for _, s := range w.u.Tail {
		n += s.Size
	}
	return n
}

// append reads body to its end, writing full parts as they fill and
// keeping a remainder below the minimum part size as a tail segment. With
// final set, any remainder becomes the last part instead.
func (w *writer) append(ctx context.Context, body io.Reader, final bool) error {
	if body == nil {
		body = http.NoBody
	}
	// Two buffers: while one part is stored (and hashed), the next is read
	// from the client, so a push takes the time of the slower of the two,
	// not their sum. At most two parts of memory per request.
	bufs := [2][]byte{w.r.getBuffer(), w.r.getBuffer()}
	defer w.r.putBuffer(bufs[1])
	defer w.r.putBuffer(bufs[0])
	inFlight := noPart
	defer func() { _ = inFlight() }() // no goroutine outlives its buffer
	for i := 0; ; i++ {
		buf := bufs[i%2]
		size := w.r.opts.partSize
		if i == 0 {
			size -= w.tailSize() // later reads follow a part, which took the tail
		}
		n, readErr := io.ReadFull(body, buf[:size])
		if err := inFlight(); err != nil {
			return err
		}
		inFlight = noPart
		if readErr == nil {
			// A whole part, and more may follow: checkpoint the parts
			// stored so far and store this one, beside the next read.
			inFlight = w.storePart(ctx, buf[:n])
			continue
		}
		err := w.appendRead(ctx, buf[:n], w.tailSize(), readErr, final)
		if errors.Is(err, errAppended) {
			return nil
		}
		return err
	}
}

func noPart() error { return nil }

// storePart checkpoints the parts stored so far (the session then says a
// client may resume after them), writes data as the next part and hashes
// it, beside the caller, which touches neither the session nor data until
// the function returned, which waits for all of it, has returned.
func (w *writer) storePart(ctx context.Context, data []byte) func() error {
	w.prune(len(data))
	hashed := w.hs.writeAsync(data)
	done := make(chan error, 1)
	go func() {
		if w.saved < len(w.u.Parts) {
			if err := w.checkpoint(ctx, false); err != nil {
				done <- err
				return
			}
		}
		done <- w.writePart(ctx, data)
	}()
	var (
		once sync.Once
		err  error
	)
	return func() error {
		once.Do(func() {
			err = <-done
			hashed()
			if err == nil {
				err = w.saveHash()
			}
		})
		return err
	}
}

// prune stops the speculative sha512 hash of a session whose client named
// no algorithm once n more bytes take it past speculativeMax.
func (w *writer) prune(n int) {
	if _, ok := w.hs[digest.SHA512]; ok && w.u.DigestAlgorithm == "" && w.u.Offset+int64(n) > w.r.opts.speculativeMax {
		w.hs[digest.SHA512] = nil
	}
}

// errAppended ends append's loop: the body is all stored.
var errAppended = errors.New("appended")

// appendRead stores data, what the last read of the body gave (readErr
// its error: the body ended, or failed), while the hashes of data are
// computed beside it.
func (w *writer) appendRead(ctx context.Context, data []byte, tail int64, readErr error, final bool) error {
	w.prune(len(data))
	hashed := w.hs.writeAsync(data)
	defer hashed() // data must not be reused before the hashes are done
	switch {
	case errors.Is(readErr, io.EOF), errors.Is(readErr, io.ErrUnexpectedEOF):
		var werr error
		rest := tail + int64(len(data))
		switch {
		case rest == 0:
		case rest >= w.r.opts.minPartSize, final && len(w.u.Parts) > 0:
			werr = w.writePart(ctx, data)
		case len(data) > 0:
			werr = w.addSegment(ctx, data)
		}
		if werr != nil {
			return werr
		}
		hashed()
		if err := w.saveHash(); err != nil {
			return err
		}
		return errAppended
	default:
		return fmt.Errorf("read upload body: %w", readErr)
	}
}

// writePart uploads the tail segments followed by data as the next part.
func (w *writer) writePart(ctx context.Context, data []byte) error {
	r, u := w.r, &w.u
	if u.MultipartID == "" {
		mid, err := r.blobs.CreateMultipart(ctx, u.Key)
		if err != nil {
			return fmt.Errorf("start multipart upload %s: %w", u.ID, err)
		}
		u.MultipartID = mid
	}
	src, closeAll, err := w.openTail(ctx, data)
	if err != nil {
		return err
	}
	defer closeAll()
	size := w.tailSize() + int64(len(data))
	p, err := r.blobs.UploadPart(ctx, u.Key, u.MultipartID, len(u.Parts)+1, size, src)
	if err != nil {
		return fmt.Errorf("upload part %d of %s: %w", len(u.Parts)+1, u.ID, err)
	}
	u.Parts = append(u.Parts, p)
	w.garbage = append(w.garbage, u.Tail...)
	u.Tail = nil
	u.Offset += int64(len(data))
	return nil
}

// addSegment keeps data as a tail segment; past maxSegments the tail is
// merged into one object so the session item stays small.
func (w *writer) addSegment(ctx context.Context, data []byte) error {
	r, u := w.r, &w.u
	key := segmentKey(u.ID, u.Offset, u.Claim)
	size := int64(len(data))
	var src io.Reader = bytes.NewReader(data)
	tail := u.Tail
	if len(tail) >= r.opts.maxSegments {
		merged, closeAll, err := w.openTail(ctx, data)
		if err != nil {
			return err
		}
		defer closeAll()
		src, size, tail = merged, w.tailSize()+size, nil
	}
	if err := r.blobs.Put(ctx, key, size, "", src); err != nil {
		return fmt.Errorf("store upload segment of %s: %w", u.ID, err)
	}
	if tail == nil {
		w.garbage = append(w.garbage, u.Tail...)
	}
	u.Tail = append(tail, storage.Segment{Key: key, Size: size})
	u.Offset += int64(len(data))
	return nil
}

// openTail returns the tail segments followed by data as one stream.
func (w *writer) openTail(ctx context.Context, data []byte) (io.Reader, func(), error) {
	var rs []io.Reader
	var cs []io.Closer
	closeAll := func() {
		for _, c := range cs {
			c.Close()
		}
	}
	for _, s := range w.u.Tail {
		rc, err := w.r.blobs.Open(ctx, s.Key, 0, s.Size)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("open upload segment %s: %w", s.Key, err)
		}
		rs, cs = append(rs, rc), append(cs, rc)
	}
	rs = append(rs, bytes.NewReader(data))
	return io.MultiReader(rs...), closeAll, nil
}

// saveHash records the hash state of the bytes the session now holds; it
// is called only after those bytes are stored, so a failed request never
// persists a hash of bytes it did not keep.
func (w *writer) saveHash() error {
	states, err := w.hs.save()
	if err != nil {
		return err
	}
	w.u.HashState = states
	return nil
}

// checkpoint saves the session (renewing or, with done, dropping the
// claim), then deletes segments the saved state no longer names.
func (w *writer) checkpoint(ctx context.Context, done bool) error {
	r, u := w.r, &w.u
	prev, claim, until := u.Version, u.Claim, u.ClaimUntil
	u.Version++
	if done {
		u.Claim, u.ClaimUntil = "", time.Time{}
	} else {
		u.ClaimUntil = r.opts.now().UTC().Add(r.opts.claimLease)
	}
	err := r.meta.UpdateUpload(ctx, *u, prev)
	if errors.Is(err, storage.ErrConflict) {
		err = w.overOwnSave(ctx, prev, claim)
	}
	if err != nil {
		// Not saved (as far as this request knows): the release that
		// follows must name the version stored.
		u.Version, u.Claim, u.ClaimUntil = prev, claim, until
		if errors.Is(err, storage.ErrConflict) {
			return rangeError(*u, "upload session %s was changed by another request", u.ID)
		}
		return fmt.Errorf("save upload session %s: %w", u.ID, err)
	}
	r.deleteSegments(ctx, w.garbage)
	w.garbage = nil
	w.saved = len(u.Parts)
	return nil
}

// overOwnSave retries a save that lost its version check to an earlier
// save of this same claim: one whose request failed after the store had it
// (a client that drops its connection cancels the write mid-flight, and
// DynamoDB may still apply it). Claims are unique and only their holder
// writes under them, so a stored session naming this claim holds a state
// this writer had, never ahead of w.u; w.u goes over it. claim is the
// one the writer held before this save (a release clears w.u's). Anything else is
// another request's write and stays a conflict.
func (w *writer) overOwnSave(ctx context.Context, prev int64, claim string) error {
	cur, err := w.r.meta.GetUpload(ctx, w.u.ID)
	if err != nil || cur.Claim == "" || cur.Claim != claim || cur.Version <= prev {
		return storage.ErrConflict
	}
	w.u.Version = cur.Version + 1
	return w.r.meta.UpdateUpload(ctx, w.u, cur.Version)
}

// cleanupTimeout bounds the writes that end a request's claim on a
// session once the request itself is gone.
const cleanupTimeout = 15 * time.Second

// detached is ctx without its cancellation, bounded by cleanupTimeout: a
// client that drops its connection mid-PATCH cancels the request's
// context, and the claim must still be released, or the client's own
// resume would be refused until the claim's lease ran out.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// release ends the claim, keeping what was written up to the last
// checkpoint or append. It runs detached from the request: the bytes it
// records are stored, whether or not the client still listens.
func (w *writer) release(ctx context.Context) error {
	ctx, cancel := detached(ctx)
	defer cancel()
	return w.checkpoint(ctx, true)
}

// abandon releases the claim of a request that failed; a failure to
// release is logged (the request already has its error), and the claim
// then expires with its lease.
func (w *writer) abandon(ctx context.Context) {
	if err := w.release(ctx); err != nil {
		w.r.opts.log.WarnContext(ctx, "release upload session after a failed request", "upload", w.u.ID, "error", err.Error())
	}
}

// complete verifies the digest and turns the session into a blob of repo.
// Order: if a copy of the digest is stored already, the session's bytes
// are dropped and the blob linked to that copy. Otherwise the session
// records the digest, the multipart object is completed in place (no
// copy), recorded as the digest's copy (unless another push's won
// meanwhile), linked, and the session ended. A crash at any point leaves a
// resumable session or a linked blob, and at worst an object nothing names,
// which the collector deletes.
func (w *writer) complete(ctx context.Context, d digest.Digest) (storage.Blob, error) {
	r, u := w.r, w.u
	got, ok := w.hs.digest(d.Algorithm())
	if !ok {
		w.abandon(ctx)
		if u.DigestAlgorithm != "" && SupportedAlgorithm(d.Algorithm()) {
			return storage.Blob{}, oci.Errorf(oci.CodeDigestInvalid,
				"the upload session was opened with digest-algorithm=%s, so it was not hashed with %s; push it again from POST /v2/%s/blobs/uploads/?digest-algorithm=%s",
				u.DigestAlgorithm, d.Algorithm(), u.Repo, d.Algorithm())
		}
		if SupportedAlgorithm(d.Algorithm()) {
			return storage.Blob{}, oci.Errorf(oci.CodeDigestInvalid,
				"the upload was hashed with sha256 only: it grew past %d bytes without digest-algorithm=%s on its POST; push it again from POST /v2/%s/blobs/uploads/?digest-algorithm=%s",
				w.r.opts.speculativeMax, d.Algorithm(), u.Repo, d.Algorithm())
		}
		return storage.Blob{}, oci.Errorf(oci.CodeDigestInvalid, "digest algorithm %s is not supported", d.Algorithm())
	}
	if got != d {
		r.discard(ctx, u)
		return storage.Blob{}, oci.Errorf(oci.CodeDigestInvalid, "the %d uploaded bytes hash to %s, not %s; the upload session was cancelled", u.Offset, got, d)
	}
	now := r.opts.now().UTC()
	c, err := r.meta.TouchContent(ctx, d, now)
	switch {
	case err == nil:
		// Stored already: link that copy and drop this one.
		b, err := r.link(ctx, u.Repo, c, now)
		if err != nil {
			return b, err
		}
		if u.MultipartID != "" && !u.Assembled {
			if err := r.blobs.AbortMultipart(ctx, u.Key, u.MultipartID); err != nil {
				r.opts.log.WarnContext(ctx, "abort duplicate multipart upload", "upload", u.ID, "error", err.Error())
			}
		}
		if u.Digest != "" && c.Key != u.Key {
			// An earlier attempt completed this session's object.
			if err := r.blobs.Delete(ctx, u.Key); err != nil {
				r.opts.log.WarnContext(ctx, "delete duplicate copy", "upload", u.ID, "error", err.Error())
			}
		}
		w.finish(ctx, u)
		return b, nil
	case !errors.Is(err, storage.ErrNotFound):
		return storage.Blob{}, fmt.Errorf("look up content %s: %w", d, err)
	}
	var key string
	if len(u.Parts) == 0 {
		// Everything is in tail segments, below one part: write it once,
		// verified, at a key of its own.
		src, closeAll, err := w.openTail(ctx, nil)
		if err != nil {
			return storage.Blob{}, err
		}
		key = ownKey(d, u.ID)
		err = r.blobs.Put(ctx, key, u.Offset, d, src)
		closeAll()
		if err != nil {
			return storage.Blob{}, fmt.Errorf("store blob %s of upload %s: %w", d, u.ID, err)
		}
	} else {
		key = u.Key
		if u.Digest == "" {
			// Say what the object will hold before it exists: the
			// collector reads it there while the session lasts.
			w.u.Digest = d
			if err := w.checkpoint(ctx, false); err != nil {
				return storage.Blob{}, err
			}
			u = w.u
		}
		if err := w.completeParts(ctx); err != nil {
			return storage.Blob{}, err
		}
	}
	c, since, err := r.adopt(ctx, d, u.Offset, key)
	if err != nil {
		return storage.Blob{}, err
	}
	b, err := r.link(ctx, u.Repo, c, since)
	if err != nil {
		return b, err
	}
	w.finish(ctx, u)
	return b, nil
}

// completeParts completes the session's multipart object, unless it is a
// direct upload's, completed before it was hashed. A retry after a crash
// finds the upload already completed.
func (w *writer) completeParts(ctx context.Context) error {
	r, u := w.r, w.u
	if u.Assembled {
		return nil
	}
	if err := r.blobs.CompleteMultipart(ctx, u.Key, u.MultipartID, u.Parts); err != nil {
		size, serr := r.blobs.Stat(ctx, u.Key)
		if !errors.Is(err, storage.ErrNotFound) || serr != nil || size != u.Offset {
			return fmt.Errorf("complete multipart upload %s: %w", u.ID, err)
		}
	}
	return nil
}

// finish ends a committed session and deletes its scratch segments. The
// tombstone of a multipart commit lasts a grace period more, so a
// collection running now can still read what the object is.
func (w *writer) finish(ctx context.Context, u storage.Upload) {
	r := w.r
	if until := r.opts.now().UTC().Add(r.opts.grace); u.Digest != "" && u.Expires.Before(until) {
		u.Expires = until
	}
	if err := r.end(ctx, u); err != nil {
		r.opts.log.WarnContext(ctx, "end finished upload session", "upload", u.ID, "error", err.Error())
	}
	r.deleteSegments(ctx, append(w.garbage, u.Tail...))
}
