package local

import (
	"context"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	"go.etcd.io/bbolt"

	"github.com/skiff-registry/skiff/internal/storage"
)

// This file holds the retention marks on manifests and the conditional
// tag delete, each one read-modify-write in one bbolt transaction.

// updateManifest applies fn to the manifest d of repo and stores the
// result, or deletes it if fn says so, in one transaction.
func (s *MetaStore) updateManifest(ctx context.Context, op, repo string, d digest.Digest, fn func(m *storage.Manifest) (del bool, err error)) (storage.Manifest, error) {
	return updateItem(ctx, s, op, bucketManifests, repo, d, fn)
}

// RefreshManifest implements storage.Manifests.
func (s *MetaStore) RefreshManifest(ctx context.Context, repo string, d digest.Digest, now time.Time) (storage.Manifest, error) {
	return s.updateManifest(ctx, "refresh manifest", repo, d, func(m *storage.Manifest) (bool, error) {
		m.Touched, m.Doomed = now, ""
		return false, nil
	})
}

// DoomManifest implements storage.Manifests.
func (s *MetaStore) DoomManifest(ctx context.Context, repo string, d digest.Digest, token string, before time.Time) error {
	_, err := s.updateManifest(ctx, "doom manifest", repo, d, func(m *storage.Manifest) (bool, error) {
		if m.Doomed != "" || !m.Age().Before(before) {
			return false, storage.ErrConflict
		}
		m.Doomed, m.Expired = token, true
		return false, nil
	})
	return err
}

// ExpireManifest implements storage.Manifests.
func (s *MetaStore) ExpireManifest(ctx context.Context, repo string, d digest.Digest, created time.Time) error {
	_, err := s.updateManifest(ctx, "expire manifest", repo, d, func(m *storage.Manifest) (bool, error) {
		if !m.Created.Equal(created) {
			return false, storage.ErrConflict
		}
		m.Expired = true
		return false, nil
	})
	return err
}

// ReviveManifest implements storage.Manifests.
func (s *MetaStore) ReviveManifest(ctx context.Context, repo string, d digest.Digest) error {
	_, err := s.updateManifest(ctx, "revive manifest", repo, d, func(m *storage.Manifest) (bool, error) {
		m.Doomed, m.Expired = "", false
		return false, nil
	})
	return err
}

// DeleteDoomedManifest implements storage.Manifests.
func (s *MetaStore) DeleteDoomedManifest(ctx context.Context, repo string, d digest.Digest, token string) error {
	_, err := s.updateManifest(ctx, "delete doomed manifest", repo, d, func(m *storage.Manifest) (bool, error) {
		if m.Doomed != token {
			return false, storage.ErrConflict
		}
		return true, nil
	})
	return err
}

// DeleteTagIf implements storage.Tags.
func (s *MetaStore) DeleteTagIf(ctx context.Context, repo string, t storage.Tag) error {
	return s.update(ctx, fmt.Sprintf("delete tag %s:%s if it names %s", repo, t.Name, t.Digest), func(tx *bbolt.Tx) error {
		if err := checkTag(repo, t.Name); err != nil {
			return err
		}
		b := tx.Bucket(bucketTags)
		k := key(repo, t.Name)
		var cur storage.Tag
		if err := getJSON(b, k, &cur); err != nil {
			return err
		}
		if cur.Digest != t.Digest || !cur.Updated.Equal(t.Updated) {
			return storage.ErrConflict
		}
		return b.Delete(k)
	})
}
