package local

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	"go.etcd.io/bbolt"

	"github.com/skiff-registry/skiff/internal/storage"
)

// This file holds the content records and the link methods a collection
// uses. Each is one bbolt transaction, so every check and its write are
// atomic, as DynamoDB's conditional writes are.

// UpsertContent implements storage.Contents.
func (s *MetaStore) UpsertContent(ctx context.Context, c storage.Content) (storage.Content, error) {
	var out storage.Content
	err := s.update(ctx, fmt.Sprintf("upsert content %s", c.Digest), func(tx *bbolt.Tx) error {
		if err := c.Digest.Validate(); err != nil {
			return fmt.Errorf("invalid digest %q: %w", c.Digest, err)
		}
		b := tx.Bucket(bucketContents)
		switch err := getJSON(b, []byte(c.Digest), &out); {
		case errors.Is(err, storage.ErrNotFound):
			out = c
		case err != nil:
			return err
		}
		if c.Linked.After(out.Linked) || out.Linked.IsZero() {
			out.Linked = c.Linked // never back: see storage.Contents
		}
		return putJSON(b, []byte(c.Digest), out)
	})
	return out, err
}

// TouchContent implements storage.Contents.
func (s *MetaStore) TouchContent(ctx context.Context, d digest.Digest, now time.Time) (storage.Content, error) {
	var out storage.Content
	err := s.update(ctx, fmt.Sprintf("touch content %s", d), func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketContents)
		if err := getJSON(b, []byte(d), &out); err != nil {
			return err
		}
		if now.After(out.Linked) {
			out.Linked = now
		}
		return putJSON(b, []byte(d), out)
	})
	return out, err
}

// GetContent implements storage.Contents.
func (s *MetaStore) GetContent(ctx context.Context, d digest.Digest) (storage.Content, error) {
	var out storage.Content
	err := s.view(ctx, fmt.Sprintf("get content %s", d), func(tx *bbolt.Tx) error {
		return getJSON(tx.Bucket(bucketContents), []byte(d), &out)
	})
	return out, err
}

// DeleteContent implements storage.Contents.
func (s *MetaStore) DeleteContent(ctx context.Context, d digest.Digest, key string, before time.Time) error {
	return s.update(ctx, fmt.Sprintf("delete content %s", d), func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketContents)
		var c storage.Content
		if err := getJSON(b, []byte(d), &c); err != nil {
			return err
		}
		if c.Key != key || !c.Linked.Before(before) {
			return storage.ErrConflict
		}
		return b.Delete([]byte(d))
	})
}

// ListContents implements storage.Contents, in lexical order of digest.
func (s *MetaStore) ListContents(ctx context.Context, p storage.Page) ([]storage.Content, error) {
	var out []storage.Content
	err := s.view(ctx, "list contents", func(tx *bbolt.Tx) error {
		var err error
		out, err = listJSON[storage.Content](tx.Bucket(bucketContents), nil, p)
		return err
	})
	return out, err
}

// ListBlobs implements storage.Blobs.
func (s *MetaStore) ListBlobs(ctx context.Context, repo string, p storage.Page) ([]storage.Blob, error) {
	var out []storage.Blob
	err := s.view(ctx, fmt.Sprintf("list blobs of %s", repo), func(tx *bbolt.Tx) error {
		if err := checkName("repository name", repo); err != nil {
			return err
		}
		var err error
		out, err = listJSON[storage.Blob](tx.Bucket(bucketBlobs), key(repo, ""), p)
		return err
	})
	return out, err
}

// ListManifests implements storage.Manifests.
func (s *MetaStore) ListManifests(ctx context.Context, repo string, p storage.Page) ([]storage.Manifest, error) {
	var out []storage.Manifest
	err := s.view(ctx, fmt.Sprintf("list manifests of %s", repo), func(tx *bbolt.Tx) error {
		if err := checkName("repository name", repo); err != nil {
			return err
		}
		var err error
		out, err = listJSON[storage.Manifest](tx.Bucket(bucketManifests), key(repo, ""), p)
		return err
	})
	return out, err
}

// updateBlob applies fn to the link of d in repo and stores the result,
// or deletes the link if fn says so, in one transaction.
func (s *MetaStore) updateBlob(ctx context.Context, op, repo string, d digest.Digest, fn func(b *storage.Blob) (del bool, err error)) (storage.Blob, error) {
	return updateItem(ctx, s, op, bucketBlobs, repo, d, fn)
}

// updateItem applies fn to the item of d in repo in bucket and stores the
// result, or deletes the item if fn says so, in one transaction.
func updateItem[T any](ctx context.Context, s *MetaStore, op string, bucket []byte, repo string, d digest.Digest, fn func(*T) (del bool, err error)) (T, error) {
	var v T
	err := s.update(ctx, fmt.Sprintf("%s %s in %s", op, d, repo), func(tx *bbolt.Tx) error {
		if err := checkRepoDigests(repo, d); err != nil {
			return err
		}
		b := tx.Bucket(bucket)
		k := key(repo, d.String())
		if err := getJSON(b, k, &v); err != nil {
			return err
		}
		del, err := fn(&v)
		switch {
		case err != nil:
			return err
		case del:
			return b.Delete(k)
		}
		return putJSON(b, k, v)
	})
	return v, err
}

// RefreshBlob implements storage.Blobs.
func (s *MetaStore) RefreshBlob(ctx context.Context, repo string, d digest.Digest, now time.Time) (storage.Blob, error) {
	return s.updateBlob(ctx, "refresh blob", repo, d, func(b *storage.Blob) (bool, error) {
		b.Linked, b.Doomed = now, ""
		return false, nil
	})
}

// DoomBlob implements storage.Blobs.
func (s *MetaStore) DoomBlob(ctx context.Context, repo string, d digest.Digest, token string, before time.Time) error {
	_, err := s.updateBlob(ctx, "doom blob", repo, d, func(b *storage.Blob) (bool, error) {
		if b.Doomed != "" || !b.Linked.Before(before) {
			return false, storage.ErrConflict
		}
		b.Doomed = token
		return false, nil
	})
	return err
}

// DeleteDoomedBlob implements storage.Blobs.
func (s *MetaStore) DeleteDoomedBlob(ctx context.Context, repo string, d digest.Digest, token string) error {
	_, err := s.updateBlob(ctx, "delete doomed blob", repo, d, func(b *storage.Blob) (bool, error) {
		if b.Doomed != token {
			return false, storage.ErrConflict
		}
		return true, nil
	})
	return err
}
