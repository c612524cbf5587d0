package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// StatBlob returns the blob d linked in repo.
func (r *Registry) StatBlob(ctx context.Context, repo string, d digest.Digest) (storage.Blob, error) {
	b, err := r.meta.GetBlob(ctx, repo, d)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Blob{}, oci.Errorf(oci.CodeBlobUnknown, "blob %s is not in repository %s", d, repo)
	}
	if err != nil {
		return storage.Blob{}, fmt.Errorf("stat blob %s in %s: %w", d, repo, err)
	}
	return b, nil
}

// OpenBlob opens length bytes of blob b, a record StatBlob returned, from
// offset (length < 0: to the end). The record is passed in, not looked up
// again: a blob GET costs one metadata read.
func (r *Registry) OpenBlob(ctx context.Context, b storage.Blob, offset, length int64) (io.ReadCloser, error) {
	rc, err := r.blobs.Open(ctx, b.Key, offset, length)
	if err != nil {
		return nil, fmt.Errorf("open blob %s at %s: %w", b.Digest, b.Key, err)
	}
	return rc, nil
}

// BlobURL returns a URL the client may fetch blob b from directly, or ""
// when the blob store cannot presign (the caller then streams the bytes).
func (r *Registry) BlobURL(ctx context.Context, b storage.Blob, ttl time.Duration) (string, error) {
	p, ok := r.blobs.(storage.Presigner)
	if !ok {
		return "", nil
	}
	u, err := p.PresignGet(ctx, b.Key, ttl)
	if errors.Is(err, storage.ErrNoPresign) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("presign blob %s: %w", b.Digest, err)
	}
	return u, nil
}

// DeleteBlob unlinks d from repo. The bytes stay (other repositories may
// share them); garbage collection is separate.
func (r *Registry) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	err := r.meta.DeleteBlob(ctx, repo, d)
	if errors.Is(err, storage.ErrNotFound) {
		return oci.Errorf(oci.CodeBlobUnknown, "blob %s is not in repository %s", d, repo)
	}
	if err != nil {
		return fmt.Errorf("delete blob %s in %s: %w", d, repo, err)
	}
	return nil
}

// PutBlob stores a blob whose digest and size are known up front (a
// monolithic upload) and links it into repo. The blob store verifies the
// bytes before anything becomes visible; the content record and then the
// link are written after, and a copy stored before wins over this one.
func (r *Registry) PutBlob(ctx context.Context, repo string, d digest.Digest, size int64, body io.Reader) (storage.Blob, error) {
	if size > r.opts.maxSinglePut {
		// Larger than one object write takes (S3: 5 GiB): stream it in
		// parts through a session of its own, as an unknown length is.
		return r.CommitUpload(ctx, repo, r.newSession(repo, d.Algorithm()).ID, d, -1, size, body)
	}
	key := ownKey(d, newID()[:16])
	if err := r.blobs.Put(ctx, key, size, d, body); err != nil {
		return storage.Blob{}, blobWriteError(d, size, err)
	}
	c, since, err := r.adopt(ctx, d, size, key)
	if err != nil {
		return storage.Blob{}, err
	}
	return r.link(ctx, repo, c, since)
}

// blobWriteError turns a failed verified write into the client's error.
func blobWriteError(d digest.Digest, size int64, err error) error {
	switch {
	case errors.Is(err, storage.ErrDigestMismatch):
		return oci.Errorf(oci.CodeDigestInvalid, "the uploaded bytes do not hash to %s", d)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return oci.Errorf(oci.CodeSizeInvalid, "the body is not the %d bytes announced for %s", size, d)
	}
	return fmt.Errorf("write blob %s: %w", d, err)
}

// adoptLegacy records the copy a link from before content records names:
// the link is refreshed first (a collection that marked it then cannot
// delete it; one that deleted it makes this ErrNotFound).
func (r *Registry) adoptLegacy(ctx context.Context, repo string, d digest.Digest) (storage.Content, error) {
	now := r.opts.now().UTC()
	src, err := r.meta.RefreshBlob(ctx, repo, d, now)
	if err != nil {
		return storage.Content{}, err
	}
	return r.meta.UpsertContent(ctx, storage.Content{Digest: d, Size: src.Size, Key: src.Key, Linked: now})
}

// Mount links blob d from repository from into repo without moving bytes.
// It reports false (no error) when the blob cannot be mounted, so the
// caller falls back to a normal upload session, as the spec asks. With an
// empty from, any stored copy of d is found.
func (r *Registry) Mount(ctx context.Context, repo, from string, d digest.Digest) (storage.Blob, bool, error) {
	if from != "" {
		if oci.ValidateRepository(from) != nil {
			return storage.Blob{}, false, nil
		}
		if _, err := r.meta.GetBlob(ctx, from, d); errors.Is(err, storage.ErrNotFound) {
			return storage.Blob{}, false, nil
		} else if err != nil {
			return storage.Blob{}, false, fmt.Errorf("mount %s from %s: %w", d, from, err)
		}
	}
	// The link window opens at the touch, which finds the copy alive (a
	// collection may have taken it since the source link was read: then
	// there is nothing to mount, and the client uploads).
	now := r.opts.now().UTC()
	c, err := r.meta.TouchContent(ctx, d, now)
	if errors.Is(err, storage.ErrNotFound) && from != "" {
		c, err = r.adoptLegacy(ctx, from, d)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Blob{}, false, nil
	}
	if err != nil {
		return storage.Blob{}, false, fmt.Errorf("mount %s: %w", d, err)
	}
	b, err := r.link(ctx, repo, c, now)
	if err != nil {
		return b, false, fmt.Errorf("link mounted blob: %w", err)
	}
	return b, true, nil
}
