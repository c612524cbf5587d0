package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// Direct uploads are Skiff's extension for big blobs: the client PUTs the
// parts of a multipart upload to presigned S3 URLs, in parallel, so no
// function touches the bytes on their way in; then the registry assembles
// them and hashes the object itself, over as many requests as it takes
// (each within the front door's time limit, the hash state saved between
// them as the chunked path saves it), and only a blob whose bytes hash to
// the digest the client named is ever linked. Until then the object is
// nobody's: no content record, no link, and a mismatch deletes it.

// Direct upload sizes: parts of at least the direct part size (64 MiB by
// default), and no more than directMaxParts of them (the answer to the
// POST lists them all).
const (
	defaultDirectPart = 64 << 20
	directMaxParts    = 1000
	// maxPart is S3's largest part.
	maxPart = 5 << 30
	// DirectMaxSize is the largest direct upload: directMaxParts of S3's
	// largest parts (just under S3's largest object, 5 TiB).
	DirectMaxSize = directMaxParts * maxPart
)

// DirectUpload is an opened direct upload: the session, and where to PUT
// each part.
type DirectUpload struct {
	Upload   storage.Upload
	PartSize int64
	Parts    []DirectPart
	// URLsExpire is when the part URLs stop working.
	URLsExpire time.Time
}

// DirectPart is one part the client PUTs: exactly Size bytes to URL.
type DirectPart struct {
	Number int    `json:"number"`
	Size   int64  `json:"size"`
	URL    string `json:"url"`
}

// DirectStatus is how far a direct upload's verification is.
type DirectStatus struct {
	Verified int64 // bytes hashed so far
	Size     int64
}

// directPartSize is the part size for a blob of size bytes.
func (r *Registry) directPartSize(size int64) int64 {
	p := r.opts.directPart
	if need := (size + directMaxParts - 1) / directMaxParts; need > p {
		p = (need + (1<<20 - 1)) &^ (1<<20 - 1) // whole MiB
	}
	return p
}

// DirectSupported reports whether the blob store can take direct uploads:
// it presigns parts (asked once, with a URL signed for nothing real).
func (r *Registry) DirectSupported() bool {
	r.directOnce.Do(func() {
		p, ok := r.blobs.(storage.PartPresigner)
		if ok {
			_, err := p.PresignPart(context.Background(), "blobs/uploaded/probe", "probe", 1, time.Minute)
			ok = err == nil
		}
		r.directOK = ok
	})
	return r.directOK
}

var errNoDirect = oci.Errorf(oci.CodeUnsupported, "this registry's store takes no direct uploads; use the distribution API's uploads").WithStatus(http.StatusBadRequest)

// StartDirectUpload opens a direct upload of a blob of size bytes in repo:
// the multipart upload and the session item, then a presigned URL per
// part, valid until the session expires (or the signing credentials do).
func (r *Registry) StartDirectUpload(ctx context.Context, repo string, size int64) (DirectUpload, error) {
	p, ok := r.blobs.(storage.PartPresigner)
	if !ok || !r.DirectSupported() {
		return DirectUpload{}, errNoDirect
	}
	if size < 1 || size > DirectMaxSize {
		return DirectUpload{}, oci.Errorf(oci.CodeSizeInvalid, "a direct upload takes 1 to %d bytes, not %d", int64(DirectMaxSize), size)
	}
	u := r.newSession(repo, "")
	mid, err := r.blobs.CreateMultipart(ctx, u.Key)
	if err != nil {
		return DirectUpload{}, fmt.Errorf("start direct upload %s: %w", u.ID, err)
	}
	u.MultipartID, u.DirectSize, u.DirectPart, u.Version = mid, size, r.directPartSize(size), 1
	if err := r.meta.CreateUpload(ctx, u); err != nil {
		r.discardBytes(ctx, u)
		return DirectUpload{}, fmt.Errorf("start direct upload %s: %w", u.ID, err)
	}
	du := DirectUpload{Upload: u, PartSize: u.DirectPart, URLsExpire: u.Expires}
	ttl := u.Expires.Sub(r.opts.now())
	for n, off := 1, int64(0); off < size; n, off = n+1, off+du.PartSize {
		url, err := p.PresignPart(ctx, u.Key, mid, n, ttl)
		if err != nil {
			r.discard(ctx, u)
			if errors.Is(err, storage.ErrNoPresign) {
				return DirectUpload{}, errNoDirect
			}
			return DirectUpload{}, fmt.Errorf("direct upload %s: %w", u.ID, err)
		}
		du.Parts = append(du.Parts, DirectPart{Number: n, Size: min(du.PartSize, size-off), URL: url})
	}
	return du, nil
}

// CompleteDirectUpload assembles the parts the client uploaded (their
// numbers and ETags, as S3 answered its PUTs) into the session's object,
// records d as the digest it must hash to, and verifies as much as one
// request may. A blob is returned once every byte is verified; until then
// the status says how far it is and the client calls VerifyDirectUpload.
func (r *Registry) CompleteDirectUpload(ctx context.Context, repo, id string, d digest.Digest, parts []storage.Part) (storage.Blob, DirectStatus, error) {
	// The request's whole time counts, the assembly's too.
	until := r.stepEnd(ctx)
	if !SupportedAlgorithm(d.Algorithm()) {
		return storage.Blob{}, DirectStatus{}, oci.Errorf(oci.CodeDigestInvalid, "digest algorithm %s is not supported", quoteAlg(d.Algorithm()))
	}
	w, err := r.claimFor(ctx, repo, id, -1, true)
	if err != nil {
		return storage.Blob{}, DirectStatus{}, err
	}
	u := &w.u
	if u.Assembled {
		if u.Digest != d {
			w.abandon(ctx)
			return storage.Blob{}, DirectStatus{}, oci.Errorf(oci.CodeDigestInvalid, "direct upload %s was completed as %s, not %s", id, u.Digest, d)
		}
		return w.verify(ctx, until)
	}
	part := u.DirectPart
	if part <= 0 {
		part = r.directPartSize(u.DirectSize)
	}
	want := int((u.DirectSize + part - 1) / part)
	if len(parts) != want {
		w.abandon(ctx)
		return storage.Blob{}, DirectStatus{}, oci.Errorf(oci.CodeBlobUploadInvalid, "a direct upload of %d bytes has %d parts, and the completion names %d", u.DirectSize, want, len(parts))
	}
	for i, p := range parts {
		if p.Number != i+1 || p.ETag == "" {
			w.abandon(ctx)
			return storage.Blob{}, DirectStatus{}, oci.Errorf(oci.CodeBlobUploadInvalid, "part %d of the completion is number %d with ETag %q: want the parts 1 to %d in order, each with the ETag its PUT answered", i+1, p.Number, p.ETag, want)
		}
	}
	// Say what the object will hold before it exists (the collector reads
	// it there), and that it is hashed with sha256 (every session's saved
	// state has it) and d's algorithm.
	earlier := u.Digest == d // an earlier completion of d got this far
	u.Parts, u.Digest, u.Offset, u.HashState = parts, d, 0, nil
	w.hs = hashers{digest.SHA256: newHash(digest.SHA256), d.Algorithm(): newHash(d.Algorithm())}
	if err := w.checkpoint(ctx, false); err != nil {
		w.abandon(ctx)
		return storage.Blob{}, DirectStatus{}, err
	}
	// Detached: S3 assembling the parts must not be cut by a client that
	// leaves, and what it did is saved at once.
	dctx, cancel := detached(ctx)
	err = r.blobs.CompleteMultipart(dctx, u.Key, u.MultipartID, parts)
	cancel()
	if err != nil && !(earlier && errors.Is(err, storage.ErrNotFound)) {
		// (An earlier request completed it and died before saving so: the
		// object is there, whatever its parts were, and is hashed below.)
		w.abandon(ctx)
		if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) {
			return storage.Blob{}, DirectStatus{}, oci.Errorf(oci.CodeBlobUploadInvalid, "the store refused the parts: a part was not uploaded, its ETag is not the one named, or a part but the last is under 5 MiB: %v", err)
		}
		return storage.Blob{}, DirectStatus{}, fmt.Errorf("complete direct upload %s: %w", id, err)
	}
	size, err := r.blobs.Stat(ctx, u.Key)
	if err != nil {
		w.abandon(ctx)
		if errors.Is(err, storage.ErrNotFound) {
			return storage.Blob{}, DirectStatus{}, oci.Errorf(oci.CodeBlobUploadInvalid, "the parts of direct upload %s are gone (the upload was completed or aborted without this session)", id)
		}
		return storage.Blob{}, DirectStatus{}, fmt.Errorf("complete direct upload %s: %w", id, err)
	}
	u.Assembled = true
	if size != u.DirectSize {
		w.discardDirect(ctx)
		return storage.Blob{}, DirectStatus{}, oci.Errorf(oci.CodeSizeInvalid, "the parts hold %d bytes, not the %d the direct upload was opened for; the upload was discarded", size, u.DirectSize)
	}
	if err := w.checkpoint(ctx, false); err != nil {
		w.abandon(ctx)
		return storage.Blob{}, DirectStatus{}, err
	}
	return w.verify(ctx, until)
}

// stepEnd is when a request's hashing stops: the step budget from now, and
// never past the request's deadline.
func (r *Registry) stepEnd(ctx context.Context) time.Time {
	until := r.opts.now().Add(r.opts.directStep)
	if dl, ok := ctx.Deadline(); ok && dl.Add(-2*time.Second).Before(until) {
		until = dl.Add(-2 * time.Second)
	}
	return until
}

// VerifyDirectUpload goes on hashing an assembled direct upload.
func (r *Registry) VerifyDirectUpload(ctx context.Context, repo, id string) (storage.Blob, DirectStatus, error) {
	until := r.stepEnd(ctx)
	w, err := r.claimFor(ctx, repo, id, -1, true)
	if err != nil {
		return storage.Blob{}, DirectStatus{}, err
	}
	if !w.u.Assembled {
		w.abandon(ctx)
		return storage.Blob{}, DirectStatus{}, oci.Errorf(oci.CodeBlobUploadInvalid, "direct upload %s is not completed yet: PUT its parts' list first", id)
	}
	return w.verify(ctx, until)
}

// verify hashes the assembled object from the offset verified so far until
// until (at least a chunk), saves
// the hash state, and at the end commits the blob or, if the bytes hash to
// another digest, discards the object.
func (w *writer) verify(ctx context.Context, until time.Time) (storage.Blob, DirectStatus, error) {
	r, u := w.r, &w.u
	if u.Offset < u.DirectSize {
		n, err := r.hashRange(ctx, u.Key, u.Offset, u.DirectSize, w.hs, until)
		if err != nil {
			// What was hashed is not saved: the next call starts from the
			// last saved offset.
			w.abandon(ctx)
			return storage.Blob{}, DirectStatus{}, fmt.Errorf("read direct upload %s: %w", u.ID, err)
		}
		u.Offset += n
		if err := w.saveHash(); err != nil {
			w.abandon(ctx)
			return storage.Blob{}, DirectStatus{}, err
		}
	}
	st := DirectStatus{Verified: u.Offset, Size: u.DirectSize}
	if u.Offset < u.DirectSize {
		if err := w.release(ctx); err != nil {
			return storage.Blob{}, st, err
		}
		return storage.Blob{}, st, nil
	}
	if got, _ := w.hs.digest(u.Digest.Algorithm()); got != u.Digest {
		w.discardDirect(ctx)
		return storage.Blob{}, st, oci.Errorf(oci.CodeDigestInvalid, "the %d bytes of the direct upload hash to %s, not %s; the upload was discarded", u.DirectSize, got, u.Digest)
	}
	// Saved (and the claim renewed) before the blob is made: a cancel that
	// raced this request has either ended the session, and this fails, or
	// finds it claimed and is refused.
	if err := w.checkpoint(ctx, false); err != nil {
		w.abandon(ctx)
		return storage.Blob{}, st, err
	}
	b, err := w.complete(ctx, u.Digest)
	if err != nil && !isClientError(err) {
		w.abandon(ctx) // resumable: the next request commits again
	}
	return b, st, err
}

// discardDirect ends a direct upload and deletes its object (assembled or
// not): nothing of it was ever a blob.
func (w *writer) discardDirect(ctx context.Context) {
	ctx, cancel := detached(ctx)
	defer cancel()
	r, u := w.r, w.u
	if err := r.end(ctx, u); err != nil {
		r.opts.log.WarnContext(ctx, "end direct upload", "upload", u.ID, "error", err.Error())
		return
	}
	r.discardBytes(ctx, u)
}
